"""Background ingestion as the API and the CLI use it: submit files, follow a job, cancel it, retry its failures.

Uploaded bytes wait in `<data_dir>/.jobs/<job id>/` until their file is written (the writer then moves them into
the content folder), so a job survives a restart: `resume()` at start-up hands back to the queue what a dead
process held and everything still queued.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Collection, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

from server.db.models import utcnow
from server.errors import FileNotInKnowledgeBase, InvalidInput, JobNotFound, QueueUnavailable
from server.jobs.imports import stage_import
from server.jobs.queue import JobQueue
from server.jobs.registry import JobRegistry, NewFile, job_not_found
from server.jobs.staging import JobFolders, settle_job
from server.jobs.states import JOB_ENDED, FileState, JobState
from server.jobs.views import JobView, job_view
from server.knowledge_base.archive import LoadedFile
from server.knowledge_base.catalog import KbCatalog
from server.knowledge_base.file_filter import checked_tags
from server.knowledge_base.files import UploadOptions
from server.knowledge_base.ingest import file_sha256
from server.knowledge_base.lease import WriterLease
from server.knowledge_base.params import Chunking, ChunkParams, KbDefaults, for_kb
from server.knowledge_base.storage import KbStorage
from server.knowledge_base.uploads import Upload, stage_uploads

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobOptions:
    batch_files: int = 8
    max_upload_bytes: int = 200 * 1024 * 1024
    keep_ended_days: float = 30.0  # 0 keeps ended jobs for ever


class JobService:
    def __init__(
        self,
        registry: JobRegistry,
        queue: JobQueue,
        catalog: KbCatalog,
        storage: KbStorage,
        defaults: KbDefaults,
        lease: WriterLease,
        options: JobOptions = JobOptions(),
    ) -> None:
        self._registry = registry
        self._queue = queue
        self._catalog = catalog
        self._storage = storage
        self._defaults = defaults
        self._lease = lease
        self._options = options
        self._folders = JobFolders(storage.data_dir)

    # -- submitting -------------------------------------------------------------------------------------------

    def submit_upload(self, kb_name: str, uploads: Sequence[Upload], options: UploadOptions) -> JobView:
        """Stage the uploaded bytes and queue them; returns at once with the job."""
        kb = self._catalog.require(kb_name)
        if options.docs:
            raise InvalidInput("docs (chunks written by hand) cannot go with background=true; send them without it")
        tags = checked_tags(options.tags) if options.tags is not None else None
        params = for_kb(self._defaults.chunk_params(options.chunking), kb.ocr_mode)
        job_id = uuid.uuid4().hex
        try:
            staged = stage_uploads(self._folders.folder(job_id), uploads, self._options.max_upload_bytes)
            files = [self._new_file(item.path, item.file_name) for item in staged]
        except BaseException:
            self._folders.drop(job_id)
            raise
        return self._submit(job_id, kb_name, "upload", params, files, override=options.override, tags=tags)

    def submit_folder_files(
        self, kb_name: str, file_names: Sequence[str], chunking: Chunking | None = None, *, kind: str = "update"
    ) -> JobView:
        """Queue files of the KB's content folder (re-parsed in place: update_docs, folder sync, init_database)."""
        kb = self._catalog.require(kb_name)
        params = for_kb(self._defaults.chunk_params(chunking), kb.ocr_mode)
        files = []
        for name in file_names:
            path = self._storage.content_path(kb_name, name)
            if path.is_symlink() or not path.is_file():
                raise FileNotInKnowledgeBase(f"{name} is not in the content folder of {kb_name!r}")
            files.append(NewFile(name, "", path.stat().st_size, file_sha256(path)))
        return self._submit(uuid.uuid4().hex, kb_name, kind, params, files, override=True)

    def submit_import(self, kb_name: str, files: Sequence[LoadedFile]) -> JobView:
        """The files of a KB import whose chunks need embedding again (server.knowledge_base.porter's Defer)."""
        kb = self._catalog.require(kb_name)
        params = for_kb(self._defaults.chunk_params(None), kb.ocr_mode)  # recorded only: the chunks are given
        job_id = uuid.uuid4().hex
        try:
            staged = stage_import(self._folders, job_id, files)
        except BaseException:
            self._folders.drop(job_id)
            raise
        return self._submit(job_id, kb_name, "import", params, staged, override=False)

    def _submit(
        self,
        job_id: str,
        kb_name: str,
        kind: str,
        params: ChunkParams,
        files: list[NewFile],
        *,
        override: bool,
        tags: list[str] | None = None,
    ) -> JobView:
        if not files:
            raise InvalidInput("no files to ingest: send at least one")
        options: dict[str, object] = {"chunking": asdict(params), "override": override}
        if tags is not None:  # given to each file as it is registered (None: a replaced file keeps its own)
            options["tags"] = tags
        self._registry.create(job_id, kb_name, kind, options, files)
        try:
            self._queue.enqueue(job_id, self._registry.queued_files(job_id), self._options.batch_files)
        except QueueUnavailable:
            self._registry.cancel(job_id)
            self._folders.drop(job_id)
            raise
        return self.get(job_id)

    def _new_file(self, path: Path, file_name: str) -> NewFile:
        return NewFile(file_name, self._folders.relative(path), path.stat().st_size, file_sha256(path))

    # -- following and steering -------------------------------------------------------------------------------

    def get(
        self, job_id: str, *, file_state: FileState | None = None, offset: int = 0, limit: int | None = None
    ) -> JobView:
        """The job with its files (failed ones first; `file_state`, `offset` and `limit` pick a page of them)."""
        job, files = self._registry.get(job_id, state=file_state, offset=offset, limit=limit)
        return job_view(job, self._registry.summary(job_id), files)

    def summary(self, job_id: str) -> JobView:
        job, _ = self._registry.get(job_id)
        return job_view(job, self._registry.summary(job_id))

    def jobs(
        self,
        kb_name: str | None = None,
        state: JobState | None = None,
        limit: int = 50,
        among: Collection[str] | None = None,
    ) -> list[JobView]:
        """The newest jobs, of one KB or of those `among` names (None: every KB)."""
        return [job_view(job, summary) for job, summary in self._registry.jobs(kb_name, state, limit, among)]

    def kb_of(self, job_id: str) -> str:
        """The knowledge base a job ingests into; raises JobNotFound."""
        kb_name = self._registry.kb_of(job_id)
        if kb_name is None:
            raise JobNotFound(job_not_found(job_id))
        return kb_name

    def cancel(self, job_id: str) -> JobView:
        """Cancel a queued or running job: its queued files now, those in work before their next stage."""
        self._registry.cancel(job_id)
        self._folders.drop_files(self._registry.ended_staged(job_id, ("cancelled",)))
        return self.get(job_id)

    def cancel_kb(self, kb_name: str) -> int:
        """Cancel the KB's jobs before the KB goes, so none of them writes into a KB that no longer exists."""
        job_ids = self._registry.cancel_kb(kb_name)
        for job_id in job_ids:
            self._folders.drop_files(self._registry.ended_staged(job_id, ("cancelled",)))
        return len(job_ids)

    def retry(self, job_id: str) -> JobView:
        """Queue the failed files again (their staged bytes were kept for this)."""
        file_ids = self._registry.retry(job_id)
        self._queue.enqueue(job_id, file_ids, self._options.batch_files)
        return self.get(job_id)

    def progress(self, job_id: str, *, poll_s: float = 0.5) -> Iterator[JobView]:
        """The job's summary now and then each time it changes, until it ends (a blocking iterator)."""
        self.summary(job_id)  # raises JobNotFound before the stream starts
        last = None
        while True:
            view = self.summary(job_id)
            key = (view.state, tuple(view.counts.values()), view.chunks)
            if key != last:
                last = key
                yield view
            if view.state in JOB_ENDED:
                return
            time.sleep(poll_s)

    # -- recovery ---------------------------------------------------------------------------------------------

    def resume(self) -> int:
        """At start-up: give back to the queue what dead processes held and settle jobs a crash left unsettled.
        When no other process works on this data dir the queue is rebuilt from the registry (every queued file
        once); otherwise only what was given back is enqueued. Returns the files enqueued."""
        others = set(self._lease.others_alive())
        released = self._registry.reclaim(lambda lease: lease == self._lease.id or lease in others)
        for job_id in self._registry.unsettled():
            settle_job(self._registry, self._folders, job_id)
        if not others:
            self._queue.flush()
            self._folders.sweep(self._registry.exists)
            released = self._registry.queued()
        self.prune()
        count = self._enqueue_all(released)
        if count:
            log.info("resumed %d queued files of %d jobs", count, len(released))
        return count

    def prune(self) -> int:
        """Delete jobs that ended more than `keep_ended_days` ago, and the bytes a failed one kept for a retry."""
        if self._options.keep_ended_days <= 0:
            return 0
        job_ids = self._registry.prune(utcnow() - timedelta(days=self._options.keep_ended_days))
        for job_id in job_ids:
            self._folders.drop(job_id)
        if job_ids:
            log.info("deleted %d jobs that ended over %g days ago", len(job_ids), self._options.keep_ended_days)
        return len(job_ids)

    def reclaim(self) -> int:
        """Now and then while running: files held by a process that died go back to the queue."""
        others = set(self._lease.others_alive())
        return self._enqueue_all(self._registry.reclaim(lambda lease: lease == self._lease.id or lease in others))

    def _enqueue_all(self, by_job: dict[str, list[int]]) -> int:
        for job_id, file_ids in by_job.items():
            self._queue.enqueue(job_id, file_ids, self._options.batch_files)
        return sum(len(ids) for ids in by_job.values())
