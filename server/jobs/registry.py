"""Ingestion jobs as the registry records them: each job, each of its files, their states and who works on them.

Every state change is one short transaction with a condition on the state it leaves, so two workers (threads or
processes) never both take a file: `claim` moves files from queued to parsing and returns only those it moved.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from server.db.models import IngestJob, IngestJobFile, utcnow
from server.errors import JobFinished, JobNotFound, NothingToRetry
from server.jobs.states import ACTIVE_FILE, DONE_FILE, JOB_ENDED, FileState, JobState
from server.knowledge_base.catalog import KbCatalog


@dataclass(frozen=True)
class NewFile:
    file_name: str
    staged: str  # where its bytes wait, relative to the data dir ("" for a file already in the content folder)
    size: int
    sha256: str


@dataclass(frozen=True)
class ClaimedFile:
    id: int
    file_name: str
    staged: str
    sha256: str


@dataclass(frozen=True)
class Claim:
    """Files one worker took from a job, with the job's options."""

    job_id: str
    kb_name: str
    kind: str
    options: dict[str, Any]
    owner: str
    files: list[ClaimedFile]


def lease_of(owner: str) -> str:
    """The writer lease in a claim's owner ("<lease>/<claim>")."""
    return owner.split("/", 1)[0]


class JobRegistry:
    def __init__(self, catalog: KbCatalog) -> None:
        self._catalog = catalog

    def create(self, job_id: str, kb_name: str, kind: str, options: dict[str, Any], files: Sequence[NewFile]) -> str:
        with self._catalog.session() as session:
            job = IngestJob(id=job_id, kb_name=kb_name, kind=kind, state="queued", options=options)
            job.files = [
                IngestJobFile(
                    file_name=f.file_name,
                    staged=f.staged,
                    size=f.size,
                    sha256=f.sha256,
                    state="queued",
                    error="",
                    chunk_count=0,
                    owner="",
                    attempts=0,
                )
                for f in files
            ]
            session.add(job)
            return job.id

    def queued_files(self, job_id: str) -> list[int]:
        with self._catalog.session() as session:
            return list(
                session.scalars(
                    select(IngestJobFile.id)
                    .where(IngestJobFile.job_id == job_id, IngestJobFile.state == "queued")
                    .order_by(IngestJobFile.id)
                )
            )

    def claim(self, job_id: str, file_ids: Sequence[int], lease: str) -> Claim | None:
        """Take the queued files among `file_ids`; None when the job is gone, ended or has none of them left."""
        owner = f"{lease}/{uuid.uuid4().hex[:12]}"
        with self._catalog.session() as session:
            job = session.get(IngestJob, job_id)
            if job is None or job.state in JOB_ENDED:
                return None
            now = utcnow()
            session.execute(
                update(IngestJobFile)
                .where(IngestJobFile.id.in_(file_ids), IngestJobFile.job_id == job_id, IngestJobFile.state == "queued")
                .values(state="parsing", owner=owner, attempts=IngestJobFile.attempts + 1, started_at=now)
            )
            rows = session.scalars(
                select(IngestJobFile).where(IngestJobFile.owner == owner).order_by(IngestJobFile.id)
            ).all()
            if not rows:
                return None
            if job.state == "queued":
                job.state = "running"
                job.started_at = job.started_at or now
            files = [ClaimedFile(row.id, row.file_name, row.staged, row.sha256) for row in rows]
            return Claim(job.id, job.kb_name, job.kind, dict(job.options), owner, files)

    def move(self, claim: Claim, file_ids: Sequence[int], state: FileState) -> None:
        """Claimed files go on to the next stage (parsing → embedding → writing)."""
        with self._catalog.session() as session:
            self._set(session, claim, file_ids, state=state)

    def end_files(
        self, claim: Claim, outcomes: dict[int, tuple[FileState, str]], session: Session | None = None
    ) -> None:
        """Files reach an end state ({file id: (state, reason)}); inside `session` when given (the KB commit)."""
        if session is None:
            with self._catalog.session() as own:
                self.end_files(claim, outcomes, own)
            return
        now = utcnow()
        for file_id, (state, reason) in outcomes.items():
            self._set(session, claim, [file_id], state=state, error=reason, finished_at=now)

    def mark_done(self, session: Session, claim: Claim, chunks: dict[int, int]) -> None:
        """Inside the transaction that registers the files in the KB: the same commit ends them as done."""
        now = utcnow()
        for file_id, count in chunks.items():
            self._set(session, claim, [file_id], state="done", chunk_count=count, error="", finished_at=now)

    def release(self, claim: Claim, file_ids: Sequence[int]) -> None:
        """Claimed files this worker will not finish (it is stopping) go back to the queue."""
        with self._catalog.session() as session:
            self._set(session, claim, file_ids, state="queued", owner="")

    def settle(self, job_id: str) -> str:
        """End a job once none of its files is queued or in work; returns its state."""
        with self._catalog.session() as session:
            job = session.get(IngestJob, job_id)
            if job is None:
                raise JobNotFound(job_not_found(job_id))
            counts = _counts(session, job_id)
            if job.state in JOB_ENDED or any(counts.get(state, 0) for state in ("queued", *ACTIVE_FILE)):
                return job.state
            job.state = "failed" if counts.get("failed") else "done"
            job.finished_at = utcnow()
            return job.state

    def is_cancelled(self, job_id: str) -> bool:
        with self._catalog.session() as session:
            return session.scalar(select(IngestJob.state).where(IngestJob.id == job_id)) in (None, "cancelled")

    def cancel(self, job_id: str) -> None:
        """Stop a job: queued files are cancelled now, files in work when their worker next looks."""
        with self._catalog.session() as session:
            job = self._require(session, job_id)
            if job.state in JOB_ENDED:
                raise JobFinished(
                    f"job {job_id} has already ended ({job.state}); only a queued or running job can be cancelled"
                )
            job.state = "cancelled"
            job.finished_at = utcnow()
            session.execute(
                update(IngestJobFile)
                .where(IngestJobFile.job_id == job_id, IngestJobFile.state == "queued")
                .values(state="cancelled", finished_at=job.finished_at)
            )

    def cancel_kb(self, kb_name: str) -> list[str]:
        """Cancel every job of the KB that has not ended (the KB is being deleted); returns their ids."""
        with self._catalog.session() as session:
            live = IngestJob.state.in_(("queued", "running"))
            ids = list(session.scalars(select(IngestJob.id).where(IngestJob.kb_name == kb_name, live)))
        for job_id in ids:
            try:
                self.cancel(job_id)
            except JobFinished:
                continue  # it ended between the two reads: nothing to stop
        return ids

    def prune(self, ended_before: datetime) -> list[str]:
        """Delete the jobs that ended before `ended_before`, with their files; returns their ids."""
        with self._catalog.session() as session:
            old = IngestJob.state.in_(JOB_ENDED), IngestJob.finished_at < ended_before
            ids = list(session.scalars(select(IngestJob.id).where(*old)))
            if ids:
                session.execute(delete(IngestJobFile).where(IngestJobFile.job_id.in_(ids)))
                session.execute(delete(IngestJob).where(IngestJob.id.in_(ids)))
            return ids

    def retry(self, job_id: str) -> list[int]:
        """Queue a job's failed files again; returns their ids."""
        with self._catalog.session() as session:
            job = self._require(session, job_id)
            failed = list(
                session.scalars(
                    select(IngestJobFile.id).where(IngestJobFile.job_id == job_id, IngestJobFile.state == "failed")
                )
            )
            if not failed:
                raise NothingToRetry(f"job {job_id} has no failed files to retry (it is {job.state})")
            session.execute(
                update(IngestJobFile)
                .where(IngestJobFile.id.in_(failed))
                .values(state="queued", error="", owner="", finished_at=None)
            )
            busy = session.scalar(
                select(func.count())
                .select_from(IngestJobFile)
                .where(IngestJobFile.job_id == job_id, IngestJobFile.state.in_(ACTIVE_FILE))
            )
            if job.finished_at is not None and job.started_at is not None:
                # Throughput and ETA count from started_at: moving it by the time the job sat ended keeps them
                # a measure of working time rather than of how long the user waited before retrying.
                job.started_at += utcnow().replace(tzinfo=None) - job.finished_at.replace(tzinfo=None)
            job.state, job.finished_at = ("running" if busy else "queued"), None
            return failed

    def reclaim(self, alive: Callable[[str], bool]) -> dict[str, list[int]]:
        """Files in work for a process that died go back to the queue; returns them by job."""
        with self._catalog.session() as session:
            rows = session.scalars(select(IngestJobFile).where(IngestJobFile.state.in_(ACTIVE_FILE))).all()
            released: dict[str, list[int]] = {}
            for row in rows:
                if not alive(lease_of(row.owner)):
                    row.state, row.owner = "queued", ""
                    released.setdefault(row.job_id, []).append(row.id)
            return released

    def queued(self) -> dict[str, list[int]]:
        """The queued files of every job that has not ended, by job."""
        with self._catalog.session() as session:
            rows = session.execute(
                select(IngestJobFile.job_id, IngestJobFile.id)
                .join(IngestJob)
                .where(IngestJob.state.in_(("queued", "running")), IngestJobFile.state == "queued")
                .order_by(IngestJobFile.id)
            ).all()
        found: dict[str, list[int]] = {}
        for job_id, file_id in rows:
            found.setdefault(job_id, []).append(file_id)
        return found

    def in_flight(self, kb_name: str) -> set[str]:
        """Names of the KB's files that a job still has to do (queued or in work)."""
        with self._catalog.session() as session:
            rows = session.scalars(
                select(IngestJobFile.file_name)
                .join(IngestJob)
                .where(
                    IngestJob.kb_name == kb_name,
                    IngestJob.state.in_(("queued", "running")),
                    IngestJobFile.state.in_(("queued", *ACTIVE_FILE)),
                )
            )
            return set(rows)

    def failed_versions(self, kb_name: str) -> set[tuple[str, str]]:
        """(file name, sha256) of the KB's files whose ingestion failed in some job."""
        with self._catalog.session() as session:
            rows = session.execute(
                select(IngestJobFile.file_name, IngestJobFile.sha256)
                .join(IngestJob)
                .where(IngestJob.kb_name == kb_name, IngestJobFile.state == "failed")
            )
            return {(name, digest) for name, digest in rows}

    def kb_of(self, job_id: str) -> str | None:
        with self._catalog.session() as session:
            return session.scalar(select(IngestJob.kb_name).where(IngestJob.id == job_id))

    def exists(self, job_id: str) -> bool:
        with self._catalog.session() as session:
            return session.get(IngestJob, job_id) is not None

    def ended_staged(self, job_id: str, states: tuple[str, ...]) -> list[str]:
        """Staged paths of the job's files that ended in one of `states`."""
        with self._catalog.session() as session:
            return list(
                session.scalars(
                    select(IngestJobFile.staged).where(IngestJobFile.job_id == job_id, IngestJobFile.state.in_(states))
                )
            )

    def unsettled(self) -> list[str]:
        """Jobs that are queued or running with no file left to do (a crash between the last file and settling)."""
        with self._catalog.session() as session:
            pending = select(IngestJobFile.job_id).where(IngestJobFile.state.in_(("queued", *ACTIVE_FILE)))
            return list(
                session.scalars(
                    select(IngestJob.id).where(IngestJob.state.in_(("queued", "running")), IngestJob.id.not_in(pending))
                )
            )

    def get(
        self, job_id: str, *, state: FileState | None = None, offset: int = 0, limit: int | None = None
    ) -> tuple[IngestJob, list[IngestJobFile]]:
        """The job and its files (those in `state` only, when given), failures first, then in upload order."""
        with self._catalog.session() as session:
            job = self._require(session, job_id)
            query = select(IngestJobFile).where(IngestJobFile.job_id == job_id)
            if state is not None:
                query = query.where(IngestJobFile.state == state)
            failed_first = (IngestJobFile.state != "failed", IngestJobFile.id)
            rows = session.scalars(query.order_by(*failed_first).offset(offset).limit(limit)).all()
            return job, list(rows)

    def jobs(
        self, kb_name: str | None, state: JobState | None, limit: int, among: Collection[str] | None = None
    ) -> list[tuple[IngestJob, dict[str, Any]]]:
        """The newest jobs first, each with its file counts by state and its byte totals."""
        with self._catalog.session() as session:
            query = select(IngestJob).order_by(IngestJob.created_at.desc(), IngestJob.id).limit(limit)
            if kb_name is not None:
                query = query.where(IngestJob.kb_name == kb_name)
            if state is not None:
                query = query.where(IngestJob.state == state)
            if among is not None:  # the KBs a scoped API key reaches
                query = query.where(IngestJob.kb_name.in_(sorted(among)))
            return [(job, self._summary(session, job.id)) for job in session.scalars(query)]

    def summary(self, job_id: str) -> dict[str, Any]:
        with self._catalog.session() as session:
            self._require(session, job_id)
            return self._summary(session, job_id)

    def _summary(self, session: Session, job_id: str) -> dict[str, Any]:
        row = session.execute(
            select(
                func.coalesce(func.sum(IngestJobFile.size), 0),
                func.coalesce(func.sum(IngestJobFile.chunk_count), 0),
                func.max(IngestJobFile.finished_at),
            ).where(IngestJobFile.job_id == job_id)
        ).one()
        done = session.scalar(
            select(func.coalesce(func.sum(IngestJobFile.size), 0)).where(
                IngestJobFile.job_id == job_id, IngestJobFile.state.in_(DONE_FILE)
            )
        )
        last: datetime | None = row[2]
        return {
            "counts": _counts(session, job_id),
            "bytes": int(row[0]),
            "bytes_done": int(done or 0),
            "chunks": int(row[1]),
            "last_finished": last,
        }

    def _require(self, session: Session, job_id: str) -> IngestJob:
        job = session.get(IngestJob, job_id)
        if job is None:
            raise JobNotFound(job_not_found(job_id))
        return job

    @staticmethod
    def _set(session: Session, claim: Claim, file_ids: Sequence[int], **values: Any) -> None:
        session.execute(
            update(IngestJobFile)
            .where(
                IngestJobFile.id.in_(file_ids),
                IngestJobFile.owner == claim.owner,
                IngestJobFile.state.in_(ACTIVE_FILE),  # an ended file stays as it ended
            )
            .values(**values)
        )


def _counts(session: Session, job_id: str) -> dict[str, int]:
    rows = session.execute(
        select(IngestJobFile.state, func.count()).where(IngestJobFile.job_id == job_id).group_by(IngestJobFile.state)
    ).all()
    return {state: int(count) for state, count in rows}


def job_not_found(job_id: str) -> str:
    return f"job {job_id!r} does not exist; list jobs with GET /knowledge_base/jobs"
