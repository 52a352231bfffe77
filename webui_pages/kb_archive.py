"""KB archives in the UI: export the current KB (a download), import one as a new KB (or over one)."""

from __future__ import annotations

import streamlit as st

from webui_pages.api_types import KbInfo
from webui_pages.common import UiContext, flash, shows_errors

SAME = ""  # the pickers' "as in the archive" choice


def render_export(ui: UiContext, kb: KbInfo) -> None:
    """Two steps: the API builds the archive only when asked, then the browser downloads it."""
    t = ui.t
    with_vectors = st.checkbox(t("kb_export_vectors"), value=True, key=f"export_vectors_{kb.name}")
    ready = f"_export_{kb.name}"
    if st.button(t("kb_export"), icon=":material/archive:", key=f"export_{kb.name}"):
        with shows_errors(t), st.spinner(t("kb_export")):
            st.session_state[ready] = ui.api.export_kb(kb.name, with_vectors=with_vectors)
    if st.session_state.get(ready):
        st.download_button(
            t("kb_export_ready", name=kb.name), st.session_state[ready], file_name=f"{kb.name}.zhiku.zip",
            mime="application/zip", icon=":material/download:", key=f"export_download_{kb.name}",
        )  # fmt: skip


def render_import(ui: UiContext, on_imported: str) -> None:
    """`on_imported`: a session-state key set to the new KB's name, for the page to select it after the rerun."""
    t, defaults = ui.t, ui.defaults
    with st.expander(t("kb_import"), icon=":material/unarchive:"), st.form("import_kb"):
        upload = st.file_uploader(t("kb_import_file"), type=["zip"], key="import_file")
        name = st.text_input(t("kb_import_name"), key="import_name")
        left, right = st.columns(2)
        same = t("kb_import_same")
        vs_type = left.selectbox(
            t("kb_vs_type"), [SAME, *defaults.vs_types], format_func=lambda v: v or same, key="import_vs"
        )
        model = right.selectbox(
            t("kb_embed_model"), [SAME, *defaults.embed_models], format_func=lambda v: v or same, key="import_model"
        )
        overwrite = st.checkbox(t("kb_import_overwrite"), key="import_overwrite")
        submitted = st.form_submit_button(t("kb_import_button"), type="primary")
    if not submitted:
        return
    if upload is None:
        st.warning(t("kb_import_file_required"))
        return
    form = {
        "knowledge_base_name": name.strip(), "vector_store_type": str(vs_type), "embed_model": str(model),
        "overwrite": str(bool(overwrite)).lower(),
    }  # fmt: skip
    with shows_errors(t), st.spinner(t("kb_import")):
        report = ui.api.import_kb((upload.name, upload.getvalue()), form)
        if report.get("job_id"):
            how = t("kb_imported_job", model=report["embed_model"])
        elif report["vectors_reused"]:
            how = t("kb_imported_reused")
        else:
            how = t("kb_imported_embedded", model=report["embed_model"])
        flash(t("kb_imported", name=report["kb_name"], files=report["files"], chunks=report["chunks"], how=how))
        st.session_state[on_imported] = report["kb_name"]
        st.rerun()
