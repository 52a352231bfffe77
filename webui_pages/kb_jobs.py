"""The jobs panel: a knowledge base's background ingestion jobs with their progress, files, cancel and retry.

Everything shown comes from the API on each run, so the panel is the same after a browser reload or in a second
tab. The panel is a fragment: while a job is queued or running it alone re-runs every few seconds, and the rest
of the page stays as it is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

import streamlit as st

from webui_pages.api_client import ApiClient, ApiError
from webui_pages.api_types import Job, JobFile, KbInfo
from webui_pages.common import UiContext, error_text, human_size, shows_errors
from webui_pages.i18n import Translator

POLL_S = 2.0
JOBS_SHOWN = 20
FILES_PER_PAGE = 50  # a 1,000-file job is read page by page, failures first
# The API's file states in the order a file goes through them (GET /knowledge_base/jobs/{id} lists each one).
FILE_STATES = ("queued", "parsing", "embedding", "writing", "done", "failed", "cancelled", "duplicate")
_STATE_COLOURS = {"queued": "gray", "running": "blue", "done": "green", "failed": "red", "cancelled": "orange"}


# -- text ------------------------------------------------------------------------------------------------------
def format_duration(t: Translator, seconds: float) -> str:
    if seconds < 60:
        return t("dur_s", n=max(0, math.ceil(seconds)))
    minutes = round(seconds / 60)
    if minutes < 60:
        return t("dur_min", n=minutes)
    return t("dur_h", h=minutes // 60, m=minutes % 60)


def progress_text(t: Translator, job: Job) -> str:
    """The bar's label, e.g. "37/300 files · 2.1 files/s · ETA 1 min"."""
    parts = [t("job_progress_files", ended=job.ended_files, total=job.total_files)]
    if job.files_per_s > 0:
        parts.append(t("job_rate", rate=f"{job.files_per_s:.1f}"))
    if job.active:
        parts.append(_eta_text(t, job))
    elif (took := _took_s(job)) is not None:
        parts.append(t("job_took", time=format_duration(t, took)))
    return " · ".join(parts)


def _eta_text(t: Translator, job: Job) -> str:
    if job.eta_s is not None:
        return t("job_eta", eta=format_duration(t, job.eta_s))
    return t("job_waiting") if job.started_at is None else t("job_eta_unknown")


def _took_s(job: Job) -> float | None:
    if not job.started_at or not job.finished_at:
        return None
    try:
        took = datetime.fromisoformat(job.finished_at) - datetime.fromisoformat(job.started_at)
    except ValueError:  # a timestamp the API should not send; the label just leaves the duration out
        return None
    return max(took.total_seconds(), 0.0)


def counts_text(t: Translator, job: Job) -> str:
    """The files by state, leaving out the states no file is in."""
    shown = [(state, job.counts.get(state, 0)) for state in FILE_STATES]
    return " · ".join(t("job_count", state=t(f"file_state_{state}"), n=n) for state, n in shown if n)


def job_title(t: Translator, job: Job) -> str:
    colour = _STATE_COLOURS.get(job.state, "gray")
    created = job.created_at[:19].replace("T", " ")
    return t(
        "job_title",
        kind=t(f"job_kind_{job.kind}") if job.kind in ("upload", "update", "sync") else job.kind,
        state=f":{colour}-badge[{t(f'job_state_{job.state}')}]" if job.state in _STATE_COLOURS else job.state,
        files=job.total_files,
        created=created,
        id=job.job_id[:8],
    )


# -- files -----------------------------------------------------------------------------------------------------
def file_columns(t: Translator, files: Sequence[JobFile]) -> dict[str, list[object]]:
    return {
        t("col_file_name"): [f.file_name for f in files],
        t("col_state"): [t(f"file_state_{f.state}") if f.state in FILE_STATES else f.state for f in files],
        t("col_reason"): [f.error for f in files],
        t("col_attempts"): [f.attempts for f in files],
        t("col_chunks"): [f.chunk_count for f in files],
        t("col_size"): [human_size(f.size) for f in files],
    }


# -- the panel -------------------------------------------------------------------------------------------------
def render_jobs(ui: UiContext, kb: KbInfo) -> None:
    # The timer of a fragment is fixed when it is drawn, so this full run asks once whether anything moves; the
    # fragment asks again on each of its own runs and re-runs the page when the answer changes.
    polling = any(job.active for job in ui.api.list_jobs(kb.name, limit=JOBS_SHOWN))
    st.fragment(_panel, run_every=POLL_S if polling else None)(ui, kb, polling)


def _panel(ui: UiContext, kb: KbInfo, polling: bool) -> None:
    t = ui.t
    with shows_errors(t):
        jobs = ui.api.list_jobs(kb.name, limit=JOBS_SHOWN)
        if any(job.active for job in jobs) != polling:
            st.rerun()  # start the timer for a job that began, or stop it once the last one ended
        head, refresh = st.columns([5, 1])
        head.caption(t("jobs_shown", n=JOBS_SHOWN, s=f"{POLL_S:g}"))
        refresh.button(t("jobs_refresh"), key=f"jobs_refresh_{kb.name}")
        if not jobs:
            st.info(t("jobs_empty"))
        for job in jobs:
            _job_card(ui, job)


def _job_card(ui: UiContext, job: Job) -> None:
    t = ui.t
    with st.container(border=True, key=f"job_{job.job_id}"):
        st.markdown(job_title(t, job))
        st.progress(min(max(job.progress, 0.0), 1.0), text=progress_text(t, job))
        st.caption(counts_text(t, job))
        _actions(ui, job)
        files = st.expander(t("job_files", n=job.total_files), key=f"job_files_{job.job_id}", on_change="rerun")
        if files.open:  # only an open list asks for the job's files
            with files:
                _files(ui, job)


def _actions(ui: UiContext, job: Job) -> None:
    t = ui.t
    if job.active:
        st.button(t("job_cancel"), key=f"job_cancel_{job.job_id}", on_click=_cancel, args=(ui.api, t, job.job_id))
    # Retry once the job has ended: the API puts a retried job back to "queued", which would misstate a job
    # whose other files are still being worked on.
    elif job.failed_files:
        st.button(t("job_retry"), key=f"job_retry_{job.job_id}", on_click=_retry, args=(ui.api, t, job.job_id))
    notice = st.session_state.get(_notice_key(job.job_id))
    if notice is None:
        return
    kind, text, while_active = notice
    # A success describes the state its action led to; once the job has left it (a retried job ended again),
    # the card's own state says more. A failure stays until the next action on the job.
    if while_active is None or while_active == job.active:
        (st.error if kind == "error" else st.success)(text)


def _notice_key(job_id: str) -> str:
    return f"_job_notice_{job_id}"


def _cancel(api: ApiClient, t: Translator, job_id: str) -> None:
    try:
        api.cancel_job(job_id)
    except ApiError as error:  # e.g. 409: it ended between the last refresh and the click
        st.session_state[_notice_key(job_id)] = ("error", error_text(t, error), None)
    else:
        st.session_state[_notice_key(job_id)] = ("success", t("job_cancelled"), False)


def _retry(api: ApiClient, t: Translator, job_id: str) -> None:
    try:
        job = api.retry_job(job_id)
    except ApiError as error:  # e.g. 409: nothing failed, or the job was retried from another tab
        st.session_state[_notice_key(job_id)] = ("error", error_text(t, error), None)
    else:
        st.session_state[_notice_key(job_id)] = ("success", t("job_retried", n=job.counts.get("queued", 0)), True)


def _files(ui: UiContext, job: Job) -> None:
    """One page of the job's files, read from the API page by page (it lists failed files first)."""
    t = ui.t
    filter_col, page_col, _ = st.columns([2, 1, 3])
    with filter_col:
        state = _state_filter(t, job)
    total = job.counts.get(state, 0) if state else job.total_files
    pages = max(1, -(-total // FILES_PER_PAGE))
    page_key = f"job_page_{job.job_id}"
    if int(st.session_state.get(page_key, 1)) > pages:  # fewer files in the state now, or another filter
        st.session_state[page_key] = pages
    page = 1
    if pages > 1:
        page = int(page_col.number_input(t("page"), min_value=1, max_value=pages, step=1, key=page_key))
    first = (page - 1) * FILES_PER_PAGE
    detail = ui.api.get_job(job.job_id, file_state=state, offset=first, limit=FILES_PER_PAGE)
    shown = list(detail.files or ())
    if not shown:
        st.caption(t("job_files_none"))
        return
    st.caption(t("job_files_page", first=first + 1, last=first + len(shown), total=total))
    # A static table, not a data grid: failure reasons are long and a grid cuts them to its column width.
    st.table(file_columns(t, shown), hide_index=True)


def _state_filter(t: Translator, job: Job) -> str:
    """ "" (every file) or one of the states some file of the job is in."""
    options = ["", *(state for state in FILE_STATES if job.counts.get(state))]
    key = f"job_state_{job.job_id}"
    if st.session_state.get(key, "") not in options:  # no file is left in the state picked (a refresh moved them)
        st.session_state[key] = ""
    names = {"": t("job_files_all"), **{state: t(f"file_state_{state}") for state in options[1:]}}
    return str(st.selectbox(t("job_files_state"), options, format_func=names.__getitem__, key=key) or "")
