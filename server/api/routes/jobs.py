"""Background ingestion jobs: list them, follow one (also as Server-Sent Events), cancel it, retry its failures."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import StreamingResponse

from server.api.access import Caller
from server.api.deps import Jobs
from server.api.envelope import Envelope
from server.api.schemas import JobView, Reply
from server.api.sse import EventStream, event_schema, sse_lines
from server.jobs.states import FileState, JobState

router = APIRouter(prefix="/knowledge_base/jobs", tags=["Ingestion Jobs"])

JobId = Annotated[str, Path(min_length=1, max_length=64, description="the job_id upload_docs answered with")]


@router.get("", summary="Jobs, newest first (filter by knowledge base and state)", response_model=Reply[list[JobView]])
def list_jobs(
    jobs: Jobs,
    caller: Caller,
    knowledge_base_name: str | None = None,
    state: JobState | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Envelope:
    return Envelope(jobs.jobs(knowledge_base_name, state, limit, among=caller.kbs))


@router.get("/{job_id}", summary="One job: its files' states, counts, throughput, ETA", response_model=Reply[JobView])
def get_job(
    jobs: Jobs,
    job_id: JobId,
    file_state: Annotated[FileState | None, Query(description="only the files in this state")] = None,
    files_offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
    files_limit: Annotated[int, Query(ge=0, le=10_000, description="files listed (failed ones first)")] = 1000,
) -> Envelope:
    return Envelope(jobs.get(job_id, file_state=file_state, offset=files_offset, limit=files_limit))


@router.get(
    "/{job_id}/events",
    summary="The job's progress as Server-Sent Events, one each time it changes, until it ends",
    response_class=EventStream,
    responses=event_schema(JobView),
)
def job_events(
    jobs: Jobs, job_id: JobId, interval_s: Annotated[float, Query(ge=0.1, le=10)] = 0.5
) -> StreamingResponse:
    views = jobs.progress(job_id, poll_s=interval_s)
    first = next(views)  # a plain 404 before the stream starts
    return sse_lines(_events(first, views))


@router.post("/{job_id}/cancel", summary="Cancel a queued or running job", response_model=Reply[JobView])
def cancel_job(jobs: Jobs, job_id: JobId) -> Envelope:
    job = jobs.cancel(job_id)
    return Envelope(job, f"job {job_id} cancelled")


@router.post("/{job_id}/retry", summary="Queue the job's failed files again", response_model=Reply[JobView])
def retry_job(jobs: Jobs, job_id: JobId) -> Envelope:
    job = jobs.retry(job_id)
    return Envelope(job, f"job {job_id}: {job.counts['queued']} files queued again")


def _events(first: JobView, rest: Iterator[JobView]) -> Iterator[dict[str, Any]]:
    yield asdict(first)
    for view in rest:
        yield asdict(view)
