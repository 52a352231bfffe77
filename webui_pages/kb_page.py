"""Knowledge-base management: pick, create or delete a KB, then work on its files, chunks and search."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from webui_pages.api_types import KbInfo
from webui_pages.common import (
    SECTION_KEY,
    UiContext,
    flash,
    search_mode_picker,
    show_flash,
    shows_errors,
    take_section_next_run,
)
from webui_pages.kb_archive import render_export, render_import
from webui_pages.kb_chunks import render_chunks
from webui_pages.kb_faq import render_faq
from webui_pages.kb_files import render_files
from webui_pages.kb_jobs import render_jobs
from webui_pages.kb_search import render_rebuild, render_search
from webui_pages.kb_upload import render_upload

NEW_KB = "\x00new"  # the picker's "create a knowledge base" entry (no KB name can hold a control character)
_PICKER = "kb_choice"
_NEXT = "_kb_choice_next"

SECTIONS: dict[str, Callable[[UiContext, KbInfo], None]] = {
    "files": render_files,
    "upload": render_upload,
    "jobs": render_jobs,
    "chunks": render_chunks,
    "search": render_search,
    "rebuild": render_rebuild,
    "faq": render_faq,
}


def render_kb_page(ui: UiContext) -> None:
    t = ui.t
    st.title(t("kb_title"))
    show_flash()
    with shows_errors(t):
        kbs = {kb.name: kb for kb in ui.api.list_kbs()}
        choice = _pick(ui, list(kbs))
        if choice == NEW_KB:
            _create_form(ui)
            render_import(ui, _NEXT)
            return
        kb = kbs[choice]
        _header(ui, kb)
        section = _pick_section(ui)
        with shows_errors(t):
            SECTIONS[section](ui, kb)


def select_kb_next_run(name: str) -> None:
    """Make the picker show `name` after the next rerun (a widget's value cannot change once it is drawn)."""
    st.session_state[_NEXT] = name


def _pick_section(ui: UiContext) -> str:
    """The section radio; the URL keeps it (?section=jobs), so a reload comes back to the jobs being followed."""
    t, options = ui.t, list(SECTIONS)
    after_upload = take_section_next_run()
    from_url = st.query_params.get("section")
    if after_upload in options:
        st.session_state[SECTION_KEY] = after_upload
    elif SECTION_KEY not in st.session_state and from_url in options:
        st.session_state[SECTION_KEY] = from_url
    section = str(
        st.radio(t("section"), options, format_func=lambda s: t(f"section_{s}"), horizontal=True, key=SECTION_KEY)
    )
    st.query_params["section"] = section
    return section


def _pick(ui: UiContext, names: list[str]) -> str:
    options = [*names, NEW_KB]
    after_create = st.session_state.pop(_NEXT, None)
    from_url = st.query_params.get("kb")  # a link to one KB: ?kb=<name>
    if after_create in options:
        st.session_state[_PICKER] = after_create
    elif _PICKER not in st.session_state and from_url in options:
        st.session_state[_PICKER] = from_url
    if st.session_state.get(_PICKER) not in options:
        st.session_state[_PICKER] = names[0] if names else NEW_KB
    choice = str(
        st.selectbox(
            ui.t("kb_pick"),
            options,
            format_func=lambda name: ui.t("kb_new_option") if name == NEW_KB else name,
            key=_PICKER,
        )
    )
    if choice != NEW_KB:
        st.query_params["kb"] = choice
    return choice


def _create_form(ui: UiContext) -> None:
    t, defaults = ui.t, ui.defaults
    with st.form("create_kb"):
        st.subheader(t("kb_create"))
        name = st.text_input(t("kb_name"), placeholder=t("kb_name_help"), key="new_kb_name")
        info = st.text_area(t("kb_info"), key="new_kb_info", height=80)
        left, right = st.columns(2)
        vs_types = list(defaults.vs_types) or [defaults.default_vs_type]
        vs_index = vs_types.index(defaults.default_vs_type) if defaults.default_vs_type in vs_types else 0
        vs_type = left.selectbox(t("kb_vs_type"), vs_types, index=vs_index, key="new_kb_vs")
        models = list(defaults.embed_models) or [defaults.default_embed_model or ""]
        model_index = models.index(defaults.default_embed_model) if defaults.default_embed_model in models else 0
        model = right.selectbox(t("kb_embed_model"), models, index=model_index, key="new_kb_model")
        submitted = st.form_submit_button(t("kb_create_button"), type="primary")
    if not submitted:
        return
    if not name.strip():
        st.warning(t("kb_name_required"))
        return
    with shows_errors(t):
        ui.api.create_kb(name.strip(), info=info, vs_type=str(vs_type), embed_model=str(model or ""))
        flash(t("kb_created", name=name.strip()))
        select_kb_next_run(name.strip())
        st.rerun()


def _header(ui: UiContext, kb: KbInfo) -> None:
    t = ui.t
    st.caption(t("kb_summary", vs=kb.vs_type, model=kb.embed_model, files=kb.file_count))
    with st.expander(t("kb_settings")):
        info = st.text_area(t("kb_info"), value=kb.info, key=f"info_{kb.name}", height=80)
        if st.button(t("kb_save_info"), key=f"save_info_{kb.name}"):
            with shows_errors(t):
                ui.api.update_kb_info(kb.name, info)
                st.success(t("saved"))
        _search_mode_setting(ui, kb)
        render_export(ui, kb)
        if st.button(t("kb_delete"), key=f"delete_kb_{kb.name}"):
            st.session_state[f"_confirm_delete_{kb.name}"] = True
    _confirm_delete(ui, kb)


def _search_mode_setting(ui: UiContext, kb: KbInfo) -> None:
    t = ui.t
    mode = search_mode_picker(
        ui,
        inherited=ui.defaults.search_mode,
        key=f"kb_search_mode_{kb.name}",
        label="kb_search_mode",
        current=kb.search_mode,
    )
    if st.button(t("kb_save_search_mode"), key=f"save_search_mode_{kb.name}"):
        with shows_errors(t):
            ui.api.update_search_mode(kb.name, mode)
            st.success(t("saved"))


def _confirm_delete(ui: UiContext, kb: KbInfo) -> None:
    """The confirmation sits outside the settings expander, so it stays in view."""
    t = ui.t
    pending = f"_confirm_delete_{kb.name}"
    if not st.session_state.get(pending):
        return
    st.warning(t("kb_delete_confirm", name=kb.name))
    yes, no = st.columns(2)
    if yes.button(t("kb_delete_yes"), type="primary", key=f"delete_kb_yes_{kb.name}"):
        st.session_state.pop(pending, None)
        with shows_errors(t):
            ui.api.delete_kb(kb.name)
            st.query_params.pop("kb", None)
            st.session_state.pop(_PICKER, None)
            flash(t("kb_deleted", name=kb.name))
            st.rerun()
    if no.button(t("cancel"), key=f"delete_kb_no_{kb.name}"):
        st.session_state.pop(pending, None)
        st.rerun()
