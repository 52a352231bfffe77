"""Access: the key the UI sends when the API needs one, and for the admin, per-KB keys and the audit log."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import streamlit as st

from webui_pages.api_client import ApiError
from webui_pages.common import UiContext, show_error, shows_errors
from webui_pages.i18n import Translator

KEY_STATE = "api_key"
RIGHTS = ("read", "write")


def ask_for_key(t: Translator, error: ApiError) -> None:
    """The API refused the UI's key (or it sent none): ask for one, keep it in this browser session only."""
    st.warning(t("key_needed") if error.status == 401 else error.message, icon=":material/key:")
    with st.form("api_key_form"):
        key = st.text_input(t("key_input"), type="password", help=t("key_input_help"))
        if st.form_submit_button(t("key_use"), type="primary") and key.strip():
            st.session_state[KEY_STATE] = key.strip()
            st.rerun()
    st.stop()


def key_sidebar(t: Translator) -> None:
    if st.session_state.get(KEY_STATE) and st.sidebar.button(t("key_forget"), icon=":material/logout:"):
        del st.session_state[KEY_STATE]
        st.rerun()


def render_keys_page(ui: UiContext) -> None:
    t = ui.t
    st.title(t("keys_title"))
    try:
        keys = ui.api.list_keys()
    except ApiError as error:
        if error.status == 401:
            ask_for_key(t, error)
        show_error(t, error)
        st.caption(t("keys_admin_only"))
        return
    _create_form(ui)
    _key_table(ui, keys)
    _audit(ui)


def _create_form(ui: UiContext) -> None:
    t = ui.t
    with st.expander(t("key_create"), icon=":material/add:"), st.form("create_key"):
        name = st.text_input(t("key_name"))
        with shows_errors(t):
            kbs = st.multiselect(t("key_kbs"), [kb.name for kb in ui.api.list_kbs()])
        right = st.radio(t("key_right"), RIGHTS, horizontal=True, format_func=lambda r: t(f"key_right_{r}"))
        expires = st.date_input(t("key_expires"), value=None, min_value=date.today())
        if st.form_submit_button(t("key_create"), type="primary"):
            _create(ui, name, kbs, str(right), expires if isinstance(expires, date) else None)


def _create(ui: UiContext, name: str, kbs: list[str], right: str, expires: date | None) -> None:
    t = ui.t
    if not kbs:
        st.error(t("key_kbs_required"))
        return
    at = datetime.combine(expires, time.max, tzinfo=UTC).isoformat() if expires else None
    with shows_errors(t):
        made = ui.api.create_key(name, kbs, right, at)
        st.success(t("key_created"), icon=":material/key:")
        st.code(made["key"], language=None)


def _key_table(ui: UiContext, keys: list[dict[str, object]]) -> None:
    t = ui.t
    if not keys:
        st.info(t("keys_none"))
        return
    columns = ["name", "prefix", "knowledge_bases", "right", "expires_at", "revoked_at", "active"]
    st.dataframe([{column: key[column] for column in columns} for key in keys], hide_index=True)
    active = {str(key["id"]): f"{key['name'] or key['prefix']} ({key['prefix']}…)" for key in keys if key["active"]}
    if not active:
        return
    choice = st.selectbox(t("key_revoke_pick"), list(active), format_func=active.__getitem__)
    if st.button(t("key_revoke"), icon=":material/block:") and choice:
        with shows_errors(t):
            ui.api.revoke_key(str(choice))
            st.rerun()


def _audit(ui: UiContext) -> None:
    t = ui.t
    st.subheader(t("audit_title"))
    with shows_errors(t):
        entries = ui.api.audit()
        st.dataframe(entries, hide_index=True)
        st.download_button(
            t("audit_csv"), ui.api.audit_csv(), file_name="zhiku-audit.csv", mime="text/csv", icon=":material/download:"
        )
