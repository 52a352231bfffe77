"""Zhiku Web UI: `streamlit run webui.py` (port from webui.port via --server.port, default 8501).

The UI talks only to the HTTP API (webui.api_base_url, default http://<api.host>:<api.port>), never to the
database or the disk, so it can run on another host.
"""

from __future__ import annotations

import streamlit as st

from configs import Settings, load_settings
from server.errors import ConfigError
from webui_pages.api_client import ApiClient, ApiError
from webui_pages.api_types import UiDefaults
from webui_pages.common import UiContext
from webui_pages.defaults import merge_server_configs
from webui_pages.dialogue_page import render_dialogue_page
from webui_pages.i18n import LANGUAGES, Translator
from webui_pages.kb_page import render_kb_page


def api_url(settings: Settings) -> str:
    if settings.webui.api_base_url:
        return settings.webui.api_base_url
    host = "127.0.0.1" if settings.api.host in ("0.0.0.0", "::", "") else settings.api.host
    return f"http://{host}:{settings.api.port}"


def local_defaults(settings: Settings) -> UiDefaults:
    """Form defaults from the local settings, used until (or unless) the API's /server/configs answers."""
    stores = settings.vector_stores
    vs_types = ["faiss"]
    vs_types += ["milvus"] if stores.milvus.uri else []
    vs_types += ["pg"] if stores.pg.uri else []
    if settings.kb.default_vs_type not in vs_types:
        vs_types.append(settings.kb.default_vs_type)
    return UiDefaults(
        vs_types=tuple(vs_types),
        default_vs_type=settings.kb.default_vs_type,
        embed_models=tuple(settings.embed_models),
        default_embed_model=settings.kb.default_embed_model,
        chunk_size=settings.kb.chunk_size,
        chunk_overlap=settings.kb.chunk_overlap,
        zh_title_enhance=settings.kb.zh_title_enhance,
        top_k=settings.kb.top_k,
        score_threshold=settings.kb.score_threshold,
        default_llm=settings.default_llm or "",
    )


def _client(settings: Settings) -> ApiClient:
    url = api_url(settings)
    client = st.session_state.get("_api_client")
    if not isinstance(client, ApiClient) or client.base_url != url.rstrip("/"):
        key = settings.webui.api_key.get_secret_value() if settings.webui.api_key else None
        client = st.session_state["_api_client"] = ApiClient(url, key)
    return client


@st.cache_data(ttl=60, show_spinner=False)
def _server_configs(base_url: str, _api: ApiClient) -> dict[str, object]:
    """/server/configs, shared by every browser session for a minute (failures are not cached)."""
    return _api.server_configs()


def _defaults(api: ApiClient, settings: Settings, t: Translator) -> UiDefaults:
    """Local defaults merged with the API's /server/configs; the local ones alone when the API cannot answer."""
    base = local_defaults(settings)
    try:
        return merge_server_configs(base, _server_configs(api.base_url, api))
    except ApiError as error:
        st.sidebar.caption(t("configs_local", detail=error.message))
        return base


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
    api = _client(settings)
    ui = UiContext(api, t, _defaults(api, settings, t))
    st.sidebar.caption(t("api_at", url=api.base_url))

    def kb_page() -> None:
        render_kb_page(ui)

    def dialogue_page() -> None:
        render_dialogue_page(ui)

    pages = [
        st.Page(kb_page, title=t("page_kb"), icon=":material/library_books:", default=True),
        st.Page(dialogue_page, title=t("page_chat"), icon=":material/chat:", url_path="dialogue"),
    ]
    st.navigation(pages).run()


if __name__ == "__main__":  # streamlit run executes this file as __main__
    main()
