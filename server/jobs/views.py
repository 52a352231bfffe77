"""What the API shows of a job: its state, counts by file state, progress, throughput and ETA; and its files."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from server.db.models import IngestJob, IngestJobFile, iso_utc, utcnow
from server.jobs.states import DONE_FILE, FILE_STATES, FileState, JobState


@dataclass(frozen=True)
class JobFileView:
    file_name: str
    state: FileState
    error: str  # why it failed, or which registered file it duplicates
    size: int
    chunk_count: int
    attempts: int


@dataclass(frozen=True)
class JobView:
    job_id: str
    knowledge_base_name: str
    kind: str
    state: JobState
    created_at: str
    started_at: str | None
    finished_at: str | None
    total_files: int
    counts: dict[str, int]  # files by state, every state listed
    progress: float  # share of files that reached an end state, in [0, 1]
    chunks: int
    bytes_total: int
    bytes_done: int
    files_per_s: float
    chunks_per_s: float
    eta_s: float | None  # seconds left at the rate so far; None before a rate is known
    files: list[JobFileView] | None = None  # only in the detail of one job


def job_view(job: IngestJob, summary: dict[str, Any], files: list[IngestJobFile] | None = None) -> JobView:
    counts: dict[str, int] = {state: int(summary["counts"].get(state, 0)) for state in FILE_STATES}
    total = sum(counts.values())
    ended = sum(counts[state] for state in DONE_FILE)
    elapsed = _elapsed(job, summary["last_finished"])
    files_per_s = counts["done"] / elapsed if elapsed else 0.0
    rate = ended / elapsed if elapsed and ended else 0.0
    running = job.state in ("queued", "running")
    return JobView(
        job_id=job.id,
        knowledge_base_name=job.kb_name,
        kind=job.kind,
        state=job.state,  # type: ignore[arg-type]
        created_at=iso_utc(job.created_at),
        started_at=iso_utc(job.started_at) if job.started_at else None,
        finished_at=iso_utc(job.finished_at) if job.finished_at else None,
        total_files=total,
        counts=counts,
        progress=round(ended / total, 4) if total else 1.0,
        chunks=summary["chunks"],
        bytes_total=summary["bytes"],
        bytes_done=summary["bytes_done"],
        files_per_s=round(files_per_s, 3),
        chunks_per_s=round(summary["chunks"] / elapsed, 3) if elapsed else 0.0,
        eta_s=round((total - ended) / rate, 1) if running and rate else (0.0 if not running else None),
        files=None if files is None else [_file_view(row) for row in files],
    )


def _file_view(row: IngestJobFile) -> JobFileView:
    return JobFileView(row.file_name, row.state, row.error, row.size, row.chunk_count, row.attempts)  # type: ignore[arg-type]


def _elapsed(job: IngestJob, last_finished: datetime | None) -> float:
    if job.started_at is None:
        return 0.0
    end = job.finished_at or (utcnow() if job.state in ("queued", "running") else last_finished) or utcnow()
    return max(_aware(end).timestamp() - _aware(job.started_at).timestamp(), 0.0)


def _aware(moment: datetime) -> datetime:
    """SQLite hands timestamps back without their zone; they are UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
