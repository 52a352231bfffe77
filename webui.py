"""Zhiku Web UI: `streamlit run webui.py` (port from webui.port via --server.port, default 8501).

The UI talks only to the HTTP API (webui.api_base_url, default http://<api.host>:<api.port>), never to the
database or the disk, so it can run on another host.
"""

from __future__ import annotations

import hashlib

import streamlit as st

from configs import Settings, load_settings
from server.errors import ConfigError
from server.server_configs import ServerConfigs
from webui_pages.api_client import ApiClient, ApiError
from webui_pages.api_types import UiDefaults
from webui_pages.common import UiContext, show_error
from webui_pages.dialogue_page import render_dialogue_page
from webui_pages.i18n import LANGUAGES, Translator
from webui_pages.kb_page import render_kb_page
from webui_pages.keys_page import KEY_STATE, ask_for_key, key_sidebar, render_keys_page


def api_url(settings: Settings) -> str:
    if settings.webui.api_base_url:
        return settings.webui.api_base_url
    host = "127.0.0.1" if settings.api.host in ("0.0.0.0", "::", "") else settings.api.host
    return f"http://{host}:{settings.api.port}"


def _client(settings: Settings) -> ApiClient:
    """One client per browser session, sending the key typed in the UI, else webui.api_key."""
    url = api_url(settings)
    key = st.session_state.get(KEY_STATE) or (
        settings.webui.api_key.get_secret_value() if settings.webui.api_key else None
    )
    client = st.session_state.get("_api_client")
    if not isinstance(client, ApiClient) or (client.base_url, st.session_state.get("_api_key_sent")) != (
        url.rstrip("/"),
        key,
    ):
        client = st.session_state["_api_client"] = ApiClient(url, key)
        st.session_state["_api_key_sent"] = key
    return client


@st.cache_data(ttl=60, show_spinner=False)
def _server_configs(base_url: str, key_digest: str, _api: ApiClient) -> ServerConfigs:
    """/server/configs, shared for a minute by the browser sessions sending the same key (failures are not cached).

    The key's digest is part of the cache key so that a session without a valid key is still asked for one.
    """
    return _api.server_configs()


def _defaults(api: ApiClient, t: Translator) -> UiDefaults:
    """The forms' defaults and choices from the API; without them no page can work, so the error is the page."""
    try:
        digest = hashlib.sha256(str(st.session_state.get("_api_key_sent") or "").encode()).hexdigest()
        return UiDefaults.from_configs(_server_configs(api.base_url, digest, api))
    except ApiError as error:
        if error.status in (401, 403):
            ask_for_key(t, error)
        show_error(t, error)
        st.caption(t("api_at", url=api.base_url))
        st.stop()
        raise  # st.stop() raises; this keeps type checkers sure nothing returns here


def main() -> None:
    st.set_page_config(page_title="知库 Zhiku", page_icon=":material/library_books:", layout="wide")
    try:
        settings = load_settings()
    except ConfigError as error:
        st.error(Translator("zh")("config_error", detail=error.message))
        st.stop()
    languages = list(LANGUAGES)
    lang = st.sidebar.selectbox(
        "语言 / Language",
        languages,
        index=languages.index(settings.webui.language),
        format_func=LANGUAGES.__getitem__,
        key="ui_language",
    )
    t = Translator(str(lang))

    # The pages read `ui` when they run, after the navigation is set: asking for a key then keeps the page's URL.
    def kb_page() -> None:
        render_kb_page(ui)

    def dialogue_page() -> None:
        render_dialogue_page(ui)

    def keys_page() -> None:
        render_keys_page(ui)

    page = st.navigation(
        [
            st.Page(kb_page, title=t("page_kb"), icon=":material/library_books:", default=True),
            st.Page(dialogue_page, title=t("page_chat"), icon=":material/chat:", url_path="dialogue"),
            st.Page(keys_page, title=t("page_keys"), icon=":material/key:", url_path="keys"),
        ]
    )
    api = _client(settings)
    ui = UiContext(api, t, _defaults(api, t))
    st.sidebar.caption(t("api_at", url=api.base_url))
    key_sidebar(t)
    page.run()


if __name__ == "__main__":  # streamlit run executes this file as __main__
    main()
