"""Uploading many files into a knowledge base as background jobs; the jobs panel then follows their progress."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import streamlit as st

from webui_pages.api_client import ApiClient, ApiError, UploadFile
from webui_pages.api_types import KbInfo
from webui_pages.common import UiContext, flash, show_section_next_run
from webui_pages.i18n import Translator
from webui_pages.kb_files import split_tags

# A background request only stages the bytes (the API's workers parse later), so a request's cost is its bytes,
# not its files: one request, and so one job, takes as many files as fit. The file cap stays well under the
# 1,000 parts Starlette accepts in one multipart body; the byte cap keeps this process's copy of a request and
# its send time bounded. Only uploads that exceed a cap are split, and each part becomes its own job (the API
# cannot add files to a job it has already queued).
BATCH_FILES = 500
BATCH_BYTES = 32 * 1024 * 1024
OCR_CHOICES = ("", "auto", "always", "never")  # "": the KB's own mode
_PER_FILE_REFUSALS = (413, 422)  # a request refused for one of its files (too big, bad name): split it to find it


@dataclass(frozen=True)
class UploadParams:
    chunk_size: int
    chunk_overlap: int
    zh_title_enhance: bool
    override: bool
    ocr: str = ""  # auto, always, never; "": the KB's own mode
    tags: tuple[str, ...] = ()  # given to every uploaded file


@dataclass
class SendReport:
    job_ids: list[str] = field(default_factory=list)
    queued: int = 0
    refused: dict[str, str] = field(default_factory=dict)  # file name: why the API did not take it


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


def batch_bytes(max_upload_bytes: int) -> int:
    """Bytes of content per request: under the API's body limit, with room for the multipart headers."""
    return max(1, min(BATCH_BYTES, max_upload_bytes * 9 // 10))


def send_batches(
    api: ApiClient,
    kb: str,
    groups: Sequence[Sequence[UploadFile]],
    params: UploadParams,
    on_sent: Callable[[int], None] | None = None,
) -> SendReport:
    """Queue each group as a background job. Once the API fails for a reason that is not one file's (it is down,
    the KB is gone), the remaining groups are not sent: they are reported with that reason."""
    report = SendReport()
    for number, group in enumerate(groups, start=1):
        try:
            _send(api, kb, group, params, report)
        except ApiError as error:
            for rest in groups[number - 1 :]:
                report.refused.update({name: error.message for name, _ in rest})
            break
        if on_sent:
            on_sent(number)
    return report


def _send(api: ApiClient, kb: str, group: Sequence[UploadFile], params: UploadParams, report: SendReport) -> None:
    try:
        job = api.upload_docs_in_background(
            kb,
            group,
            chunk_size=params.chunk_size,
            chunk_overlap=params.chunk_overlap,
            zh_title_enhance=params.zh_title_enhance,
            override=params.override,
            ocr=params.ocr,
            tags=params.tags,
        )
    except ApiError as error:
        if error.status not in _PER_FILE_REFUSALS:
            raise
        if len(group) == 1:
            report.refused[group[0][0]] = error.message
            return
        half = len(group) // 2  # halving finds k bad files in about k·log2(n) extra requests
        _send(api, kb, group[:half], params, report)
        _send(api, kb, group[half:], params, report)
        return
    report.job_ids.append(job.job_id)
    report.queued += job.total_files


def report_message(t: Translator, report: SendReport) -> tuple[str, str]:
    """The flash shown on the jobs panel: (kind, text)."""
    text = t("upload_queued", n=report.queued, jobs=len(report.job_ids))
    if not report.refused:
        return "success", text
    lines = [t("upload_refused_title", n=len(report.refused))]
    lines += [t("failed_line", name=name, reason=reason) for name, reason in report.refused.items()]
    return "warning", "\n\n".join([text, *lines])


def render_upload(ui: UiContext, kb: KbInfo) -> None:
    t, d = ui.t, ui.defaults
    round_key = f"upload_round_{kb.name}"
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
        ocr = st.selectbox(t("ocr_mode"), OCR_CHOICES, format_func=lambda mode: t(f"ocr_{mode or 'kb'}"))
        tags = st.text_input(t("upload_tags"), key=f"upload_tags_{kb.name}")
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
    params = UploadParams(
        int(chunk_size), int(overlap), bool(title), bool(override), str(ocr or ""), tuple(split_tags(tags))
    )
    report = _send_with_progress(ui, kb.name, [(f.name, f.getvalue()) for f in files], params)
    kind, message = report_message(t, report)
    flash(message, kind)
    st.session_state[round_key] = st.session_state.get(round_key, 0) + 1  # a fresh, empty uploader
    show_section_next_run("jobs")
    st.rerun()


def _send_with_progress(ui: UiContext, kb: str, items: Sequence[UploadFile], params: UploadParams) -> SendReport:
    """The bar covers sending the bytes only; parsing and embedding go on in the API's workers afterwards."""
    t = ui.t
    groups = batches(items, max_bytes=batch_bytes(ui.defaults.max_upload_bytes))
    bar = st.progress(0.0, text=t("upload_sending", i=0, n=len(groups)))

    def sent(number: int) -> None:
        bar.progress(number / len(groups), text=t("upload_sending", i=number, n=len(groups)))

    return send_batches(ui.api, kb, groups, params, on_sent=sent)
