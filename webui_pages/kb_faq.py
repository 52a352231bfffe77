"""The FAQ section: import question–answer pairs, edit them in a table, and set when chat answers with them."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from webui_pages.api_types import KbInfo
from webui_pages.common import UiContext, flash, shows_errors

PHRASING_SEPARATOR = " | "  # a table cell holds one line: the phrasings of a question are joined by this
_COLUMNS = ["id", "questions", "answer"]


def render_faq(ui: UiContext, kb: KbInfo) -> None:
    t = ui.t
    st.caption(t("faq_help"))
    _threshold_setting(ui, kb)
    _import_form(ui, kb)
    faqs = ui.api.list_faq(kb.name)
    if not faqs:
        st.info(t("faq_none"))
        return
    names = [str(one["file_name"]) for one in faqs]
    chosen = str(st.selectbox(t("faq_file"), names, key=f"faq_file_{kb.name}"))
    _editor(ui, kb, next(one for one in faqs if one["file_name"] == chosen))


def _threshold_setting(ui: UiContext, kb: KbInfo) -> None:
    t = ui.t
    with st.expander(t("faq_direct"), icon=":material/bolt:"):
        inherit = st.checkbox(
            t("faq_direct_inherit"), value=kb.direct_answer_threshold is None, key=f"faq_inherit_{kb.name}"
        )
        value = st.slider(
            t("faq_direct_threshold"), 0.0, 1.0, float(kb.direct_answer_threshold or 0.35), 0.01,
            disabled=inherit, help=t("faq_direct_threshold_help"), key=f"faq_threshold_{kb.name}",
        )  # fmt: skip
        if st.button(t("faq_direct_save"), key=f"faq_threshold_save_{kb.name}"):
            with shows_errors(t):
                ui.api.update_direct_answer_threshold(kb.name, None if inherit else float(value))
                flash(t("saved"))
                st.rerun()


def _import_form(ui: UiContext, kb: KbInfo) -> None:
    t = ui.t
    with st.expander(t("faq_import"), icon=":material/upload_file:"), st.form(f"faq_import_{kb.name}"):
        upload = st.file_uploader(t("faq_import_file"), type=["csv", "xlsx", "json", "jsonl"], key="faq_upload")
        name = st.text_input(t("faq_import_as"), key="faq_import_as")
        override = st.checkbox(t("faq_import_override"), key="faq_import_override")
        submitted = st.form_submit_button(t("faq_import_button"), type="primary")
    if not submitted:
        return
    if upload is None:
        st.warning(t("kb_import_file_required"))
        return
    with shows_errors(t):
        stored = ui.api.import_faq(kb.name, (upload.name, upload.getvalue()), file_name=name.strip(), override=override)
        flash(
            t(
                "faq_imported",
                file=stored["file_name"],
                entries=len(stored["entries"]),
                questions=stored["question_count"],
            )
        )
        st.rerun()


def _editor(ui: UiContext, kb: KbInfo, faq: dict[str, Any]) -> None:
    t = ui.t
    rows = [
        {"id": e["id"], "questions": PHRASING_SEPARATOR.join(e["questions"]), "answer": e["answer"]}
        for e in faq["entries"]
    ]
    st.caption(t("faq_entries", entries=len(rows), questions=faq["question_count"]))
    edited = st.data_editor(
        pd.DataFrame(rows, columns=_COLUMNS), num_rows="dynamic", use_container_width=True, hide_index=True,
        column_config={
            "id": st.column_config.TextColumn(t("faq_col_id"), width="small"),
            "questions": st.column_config.TextColumn(t("faq_col_questions"), width="large", required=True),
            "answer": st.column_config.TextColumn(t("faq_col_answer"), width="large", required=True),
        },
        key=f"faq_editor_{kb.name}_{faq['file_name']}",
    )  # fmt: skip
    if st.button(t("faq_save"), type="primary", key=f"faq_save_{kb.name}_{faq['file_name']}"):
        with shows_errors(t):
            stored = ui.api.update_faq(kb.name, str(faq["file_name"]), entries_from(edited.to_dict("records")))
            flash(t("faq_saved", file=stored["file_name"], entries=len(stored["entries"])))
            st.rerun()


def entries_from(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The table's rows as update_faq entries; a row left empty is dropped, phrasings are split on " | "."""
    entries = []
    for row in rows:
        questions = [q.strip() for q in _cell(row.get("questions")).split("|") if q.strip()]
        answer = _cell(row.get("answer"))
        if questions or answer:
            entries.append({"id": _cell(row.get("id")), "questions": questions, "answer": answer})
    return entries


def _cell(value: object) -> str:
    """A cell's text; a new row's empty cells come back as None or NaN."""
    return "" if value is None or pd.isna(value) else str(value).strip()
