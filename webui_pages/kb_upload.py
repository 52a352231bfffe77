"""Uploading many files into a knowledge base, in batches, with a progress bar and a list of failures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import streamlit as st

from webui_pages.api_client import ApiError, UploadFile
from webui_pages.api_types import KbInfo
from webui_pages.common import UiContext

BATCH_FILES = 8  # files per request: the server parses a batch in parallel
BATCH_BYTES = 32 * 1024 * 1024


@dataclass
class UploadReport:
    uploaded: int = 0
    failed: dict[str, str] = field(default_factory=dict)


def batches(
    files: Sequence[UploadFile], max_files: int = BATCH_FILES, max_bytes: int = BATCH_BYTES
) -> list[list[UploadFile]]:
    """Group files into requests of at most `max_files` files and about `max_bytes` bytes (a big file goes alone)."""
    groups: list[list[UploadFile]] = []
    current: list[UploadFile] = []
    size = 0
    for item in files:
        if current and (len(current) >= max_files or size + len(item[1]) > max_bytes):
            groups.append(current)
            current, size = [], 0
        current.append(item)
        size += len(item[1])
    if current:
        groups.append(current)
    return groups


def render_upload(ui: UiContext, kb: KbInfo) -> None:
    t, d = ui.t, ui.defaults
    result_key, round_key = f"upload_report_{kb.name}", f"upload_round_{kb.name}"
    _show_report(ui, st.session_state.get(result_key))
    with st.form(f"upload_{kb.name}"):
        files = st.file_uploader(
            t("upload_files", types=", ".join(d.file_types)),
            type=list(d.file_types),
            accept_multiple_files=True,
            key=f"uploader_{kb.name}_{st.session_state.get(round_key, 0)}",
        )
        size_col, overlap_col = st.columns(2)
        chunk_size = size_col.number_input(t("chunk_size"), min_value=1, max_value=100000, value=d.chunk_size)
        overlap = overlap_col.number_input(t("chunk_overlap"), min_value=0, max_value=100000, value=d.chunk_overlap)
        title = st.checkbox(t("zh_title_enhance"), value=d.zh_title_enhance)
        override = st.checkbox(t("override"), value=False)
        submitted = st.form_submit_button(t("upload_button"), type="primary")
    if not submitted:
        return
    if not files:
        st.warning(t("upload_none"))
        return
    if overlap >= chunk_size:
        st.warning(t("overlap_too_big"))
        return
    items = [(f.name, f.getvalue()) for f in files]
    report = upload_in_batches(ui, kb.name, items, int(chunk_size), int(overlap), bool(title), bool(override))
    st.session_state[result_key] = report
    st.session_state[round_key] = st.session_state.get(round_key, 0) + 1  # a fresh, empty uploader
    st.rerun()


def upload_in_batches(
    ui: UiContext, kb: str, items: Sequence[UploadFile], chunk_size: int, overlap: int, title: bool, override: bool
) -> UploadReport:
    t = ui.t
    groups = batches(items)
    report = UploadReport()
    bar = st.progress(0.0, text=t("upload_starting", n=len(items)))
    done = 0
    for number, group in enumerate(groups, start=1):
        names = ", ".join(name for name, _ in group)
        bar.progress(done / len(items), text=t("upload_progress", i=number, n=len(groups), files=names))
        try:
            failed = ui.api.upload_docs(
                kb, group, chunk_size=chunk_size, chunk_overlap=overlap, zh_title_enhance=title, override=override
            )
        except ApiError as error:  # the whole batch failed (e.g. every file a duplicate, or the API went down)
            failed = {name: error.message for name, _ in group}
        report.failed.update(failed)
        report.uploaded += len(group) - len(failed)
        done += len(group)
    bar.progress(1.0, text=t("upload_done", ok=report.uploaded, failed=len(report.failed)))
    return report


def _show_report(ui: UiContext, report: UploadReport | None) -> None:
    if report is None:
        return
    t = ui.t
    if report.uploaded:
        st.success(t("upload_done", ok=report.uploaded, failed=len(report.failed)))
    if report.failed:
        st.error(t("upload_failed_title", n=len(report.failed)))
        st.table({t("col_file_name"): list(report.failed), t("col_reason"): list(report.failed.values())})
