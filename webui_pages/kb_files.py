"""The files table of a knowledge base: server-side paging and sorting, and actions on selected files."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from typing import Any

import streamlit as st

from webui_pages.api_types import FileRow, KbInfo
from webui_pages.common import UiContext, flash, human_size, shows_errors
from webui_pages.i18n import Translator

SORT_COLUMNS = ("file_name", "ext", "size", "chunk_count", "loader", "updated_at")
PAGE_SIZES = (50, 100, 200)
MAX_DOWNLOAD = 50  # files fetched into one zip


def table_columns(t: Translator, files: Sequence[FileRow]) -> dict[str, list[Any]]:
    """The table's columns, labelled in the UI language."""
    yes, no = t("yes"), "—"
    return {
        t("col_file_name"): [f.file_name for f in files],
        t("col_ext"): [f.ext for f in files],
        t("col_size"): [human_size(f.size) for f in files],
        t("col_chunks"): [f.chunk_count for f in files],
        t("col_loader"): [f.loader for f in files],
        t("col_ocr"): [yes if f.ocr else no for f in files],
        t("col_updated"): [f.updated_at[:19].replace("T", " ") for f in files],
        t("col_in_folder"): [yes if f.in_folder else no for f in files],
        t("col_in_db"): [yes if f.in_db else no for f in files],
        t("col_custom"): [yes if f.custom_docs else no for f in files],
        t("col_tags"): [", ".join(f.tags) for f in files],
        t("col_enabled"): [yes if f.enabled else no for f in files],
    }


def render_files(ui: UiContext, kb: KbInfo) -> None:
    t = ui.t
    sort_col, desc_col, size_col, page_col = st.columns([2, 1, 1, 1])
    order_by = sort_col.selectbox(
        t("sort_by"), SORT_COLUMNS, format_func=lambda c: t(f"sort_{c}"), key=f"files_sort_{kb.name}"
    )
    descending = desc_col.toggle(t("descending"), key=f"files_desc_{kb.name}")
    page_size = int(size_col.selectbox(t("page_size"), PAGE_SIZES, key=f"files_size_{kb.name}"))
    page_key = f"files_page_{kb.name}"
    page_no = int(st.session_state.get(page_key, 1))
    result = ui.api.list_file_details(
        kb.name, offset=(page_no - 1) * page_size, limit=page_size, order_by=str(order_by), descending=descending
    )
    pages = max(1, -(-result.total // page_size))
    if page_no > pages:  # files were deleted meanwhile: show the last page
        st.session_state[page_key] = page_no = pages
        result = ui.api.list_file_details(
            kb.name, offset=(pages - 1) * page_size, limit=page_size, order_by=str(order_by), descending=descending
        )
    page_col.number_input(t("page"), min_value=1, max_value=pages, step=1, key=page_key)
    st.caption(t("files_total", total=result.total, page=page_no, pages=pages))
    names = [f.file_name for f in result.files]
    picked_key = f"files_picked_{kb.name}"
    st.session_state[picked_key] = [n for n in st.session_state.get(picked_key, []) if n in names]

    def _sync_selection() -> None:
        rows = st.session_state[f"files_table_{kb.name}"].selection.rows
        st.session_state[picked_key] = [names[i] for i in rows if i < len(names)]

    if result.files:
        st.dataframe(
            table_columns(t, result.files),
            hide_index=True,
            on_select=_sync_selection,
            selection_mode="multi-row",
            key=f"files_table_{kb.name}",
        )
    else:
        st.info(t("files_empty"))
    picked = st.multiselect(t("files_selected"), names, key=picked_key, placeholder=t("files_choose"))
    _actions(ui, kb, [str(name) for name in picked])
    _labels(ui, kb, [str(name) for name in picked])
    _folder_only(ui, kb)


def _actions(ui: UiContext, kb: KbInfo, picked: list[str]) -> None:
    t, d = ui.t, ui.defaults
    download, revector, drop, delete = st.columns(4)
    disabled = not picked
    if download.button(t("files_download"), disabled=disabled, key=f"dl_{kb.name}"):
        with shows_errors(t):
            _offer_download(ui, kb, picked)
    if revector.button(t("files_revectorize"), disabled=disabled, key=f"rv_{kb.name}"):
        with st.spinner(t("working")), shows_errors(t):
            failed = ui.api.update_docs(
                kb.name,
                picked,
                chunk_size=d.chunk_size,
                chunk_overlap=d.chunk_overlap,
                zh_title_enhance=d.zh_title_enhance,
            )
            _finish(t, t("files_revectorized", n=len(picked) - len(failed)), failed)
    if drop.button(t("files_drop_from_store"), disabled=disabled, key=f"drop_{kb.name}"):
        with shows_errors(t):
            failed = ui.api.delete_docs(kb.name, picked, delete_content=False)
            _finish(t, t("files_dropped", n=len(picked) - len(failed)), failed)
    confirm = delete.checkbox(t("files_confirm_disk"), disabled=disabled, key=f"confirm_disk_{kb.name}")
    if delete.button(t("files_delete_disk"), disabled=disabled or not confirm, type="primary", key=f"del_{kb.name}"):
        with shows_errors(t):
            failed = ui.api.delete_docs(kb.name, picked, delete_content=True)
            _finish(t, t("files_deleted", n=len(picked) - len(failed)), failed)


def split_tags(text: str) -> list[str]:
    """Comma-separated tags, trimmed, empty ones dropped, each once."""
    return list(dict.fromkeys(tag.strip() for tag in text.split(",") if tag.strip()))


def _labels(ui: UiContext, kb: KbInfo, picked: list[str]) -> None:
    """Tags and the enabled flag of the selected files (a disabled file stays, but searches never find it)."""
    t = ui.t
    tags_col, set_col, enable_col, disable_col = st.columns([3, 1, 1, 2])
    text = tags_col.text_input(t("files_tags"), key=f"tags_{kb.name}", disabled=not picked)
    if set_col.button(t("files_set_tags"), disabled=not picked, key=f"set_tags_{kb.name}"):
        with shows_errors(t):
            for name in picked:
                ui.api.update_file_tags(kb.name, name, split_tags(text))
            _finish(t, t("files_tags_set", n=len(picked)), {})
    for column, enabled, done in ((enable_col, True, "files_enabled"), (disable_col, False, "files_disabled")):
        label = t("files_enable" if enabled else "files_disable")
        if column.button(label, disabled=not picked, key=f"enabled_{enabled}_{kb.name}"):
            with shows_errors(t):
                for name in picked:
                    ui.api.set_file_enabled(kb.name, name, enabled)
                _finish(t, t(done, n=len(picked)), {})


def _finish(t: Translator, message: str, failed: dict[str, str]) -> None:
    if failed:
        flash(message + "\n\n" + "\n".join(t("failed_line", name=k, reason=v) for k, v in failed.items()), "warning")
    else:
        flash(message)
    st.rerun()


def _offer_download(ui: UiContext, kb: KbInfo, picked: list[str]) -> None:
    t = ui.t
    if len(picked) == 1:
        data = ui.api.download_doc(kb.name, picked[0])
        name = picked[0].rsplit("/", 1)[-1]
    else:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for file_name in picked[:MAX_DOWNLOAD]:
                archive.writestr(file_name, ui.api.download_doc(kb.name, file_name))
        data, name = buffer.getvalue(), f"{kb.name}.zip"
        if len(picked) > MAX_DOWNLOAD:
            st.warning(t("files_download_limit", n=MAX_DOWNLOAD))
    st.download_button(t("files_save_as", name=name), data, file_name=name, on_click="ignore", key=f"save_{kb.name}")


def _folder_only(ui: UiContext, kb: KbInfo) -> None:
    t, d = ui.t, ui.defaults
    # Listing the folder walks the disk and the whole registry: only when asked, so big KBs render fast.
    if not st.toggle(t("folder_only_title"), key=f"folder_only_on_{kb.name}"):
        return
    with shows_errors(t):
        names = ui.api.list_folder_only_files(kb.name)
        if not names:
            st.caption(t("folder_only_none"))
            return
        st.caption(t("folder_only_help", n=len(names)))
        chosen = st.multiselect(t("files_selected"), names, default=names[:20], key=f"folder_only_{kb.name}")
        if st.button(t("folder_only_vectorize"), disabled=not chosen, key=f"folder_only_go_{kb.name}"):
            with st.spinner(t("working")):
                failed = ui.api.update_docs(
                    kb.name,
                    chosen,
                    chunk_size=d.chunk_size,
                    chunk_overlap=d.chunk_overlap,
                    zh_title_enhance=d.zh_title_enhance,
                )
            _finish(t, t("files_revectorized", n=len(chosen) - len(failed)), failed)
