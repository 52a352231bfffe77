"""Running one queued task: a batch of a job's files, parsed, embedded together and written in one commit.

A file is done in the same registry transaction that makes its chunks visible (`KbWriter.commit`'s hook), so
after a crash every file is either done and whole in the KB, or not done and absent from it; the write journal
undoes or finishes the store side. Files a dead process held go back to the queue (`JobRegistry.reclaim`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy.orm import Session

from server.db.models import KnowledgeBase
from server.errors import DuplicateFile, ZhikuError
from server.jobs.imports import StagedImport, load_staged
from server.jobs.registry import Claim, ClaimedFile, JobRegistry
from server.jobs.staging import JobFolders, settle_job
from server.jobs.states import FileState
from server.knowledge_base.catalog import KbCatalog
from server.knowledge_base.files import FileService
from server.knowledge_base.ingest import FilePreparer, PreparedFile, SourceFile
from server.knowledge_base.params import ChunkParams
from server.knowledge_base.storage import KbStorage
from server.knowledge_base.writer import KbWriter

log = logging.getLogger(__name__)

DuplicatePolicy = Literal["skip", "keep"]
WriteCheck = Callable[[KnowledgeBase], str | None]
"""Why this process must not write a KB (its store is not shared with other processes), or None."""
Outcomes = dict[int, tuple[FileState, str]]


class Stopping(Exception):
    """The worker is shutting down: what it holds goes back to the queue."""


class Cancelled(Exception):
    """The job was cancelled while this worker held some of its files."""


@dataclass(frozen=True)
class RunnerParts:
    """What a runner reads and writes through (built once, shared with the rest of the process)."""

    catalog: KbCatalog
    storage: KbStorage
    preparer: FilePreparer
    writer: KbWriter
    files: FileService  # its rule for a file name already taken


class IngestRunner:
    def __init__(
        self,
        registry: JobRegistry,
        parts: RunnerParts,
        *,
        lease: str,
        duplicates: DuplicatePolicy = "skip",
        stopping: threading.Event | None = None,
        can_write: WriteCheck | None = None,
    ) -> None:
        self._registry = registry
        self._parts = parts
        self._lease = lease
        self._duplicates = duplicates
        self._stopping = stopping or threading.Event()
        self._folders = JobFolders(parts.storage.data_dir)
        self._can_write = can_write
        self._deferred: set[str] = set()

    def run_batch(self, job_id: str, file_ids: Sequence[int]) -> bool:
        """Take what is still queued of `file_ids` and ingest it (a no-op when another worker took it); False when
        this process must leave the batch to another (the queue sends it back)."""
        if self._stopping.is_set():
            return True  # left queued: the next start enqueues it again
        if not self._may_write(job_id):
            return False
        claim = self._registry.claim(job_id, file_ids, self._lease)
        if claim is None:
            return True
        try:
            self._run(claim)
        except Stopping:
            log.info("job %s: stopping, %d files go back to the queue", job_id, len(claim.files))
        except Cancelled:
            self._registry.end_files(claim, {f.id: ("cancelled", "") for f in claim.files})
        except Exception:
            log.exception("job %s: a batch failed unexpectedly", job_id)
            reason = "internal error; the server log has the details"
            self._registry.end_files(claim, {f.id: ("failed", reason) for f in claim.files})
            raise
        finally:
            self._registry.release(claim, [f.id for f in claim.files])  # only the files still in work
            settle_job(self._registry, self._folders, job_id)
        return True

    def _may_write(self, job_id: str) -> bool:
        if self._can_write is None:
            return True
        kb = self._parts.catalog.find(self._registry.kb_of(job_id) or "")
        reason = self._can_write(kb) if kb is not None else None
        if reason is not None and job_id not in self._deferred:
            self._deferred.add(job_id)
            log.warning("job %s is left to the API's workers: %s", job_id, reason)
        return reason is None

    def _run(self, claim: Claim) -> None:
        kb = self._parts.catalog.find(claim.kb_name)
        if kb is None:
            reason = f"knowledge base {claim.kb_name!r} was deleted"
            self._registry.end_files(claim, {f.id: ("failed", reason) for f in claim.files})
            return
        files = self._screen(claim, kb)
        if not files:
            return
        by_name = {f.file_name: f for f in files}
        settings: dict[str, StagedImport] = {}
        if claim.kind == "import":  # chunks from an archive: never parsed, only embedded again
            settings = {f.file_name: load_staged(self._source(kb, f)) for f in files}
            prepared = [staged.prepared for staged in settings.values()]
        else:
            params = ChunkParams(**claim.options["chunking"])
            sources = [SourceFile(self._source(kb, f), f.file_name) for f in files]
            prepared, failed = self._parts.preparer.prepare(sources, params)
            self._registry.end_files(claim, {by_name[name].id: ("failed", e.message) for name, e in failed.items()})
        self._step(claim, [by_name[p.record.file_name].id for p in prepared], "embedding")
        try:
            self._parts.preparer.embed(kb.embed_model, prepared)
        except ZhikuError as error:
            self._registry.end_files(
                claim, {by_name[p.record.file_name].id: ("failed", error.message) for p in prepared}
            )
            return
        self._step(claim, [by_name[p.record.file_name].id for p in prepared], "writing")
        self._write(claim, kb, prepared, by_name, settings)

    def _write(
        self,
        claim: Claim,
        kb: KnowledgeBase,
        prepared: list[PreparedFile],
        by_name: dict[str, ClaimedFile],
        settings: dict[str, StagedImport],
    ) -> None:
        def done(session: Session, written: Sequence[PreparedFile]) -> None:
            counts = {by_name[p.record.file_name].id: len(p.chunks) for p in written}
            self._registry.mark_done(session, claim, counts)
            tags = claim.options.get("tags")
            for p in written:
                if p.record.file_name in settings:  # an imported file keeps its tags and enabled state
                    staged = settings[p.record.file_name]
                    self._parts.catalog.set_file_settings(session, kb, p.record.file_name, staged.tags, staged.enabled)
                elif isinstance(tags, list):  # an upload's tags, in the transaction that registers the file
                    self._parts.catalog.set_file_tags(session, kb, p.record.file_name, tags)

        staged = claim.kind in ("upload", "import")
        replace = claim.kind != "import" and (claim.kind != "upload" or bool(claim.options.get("override")))
        failed = self._parts.writer.commit(kb.name, prepared, move=staged, replace=replace, on_commit=done)
        self._registry.end_files(claim, {by_name[name].id: ("failed", e.message) for name, e in failed.items()})

    def _screen(self, claim: Claim, kb: KnowledgeBase) -> list[ClaimedFile]:
        """Files to ingest; the others end here: duplicates of registered content, names taken without override.
        An import takes its archive's files as they are."""
        if claim.kind == "import":
            return list(claim.files)
        same = self._parts.catalog.same_content(kb, [f.sha256 for f in claim.files])
        ended: Outcomes = {}
        keep: list[ClaimedFile] = []
        check_names = claim.kind == "upload" and not claim.options.get("override")
        for item in claim.files:
            twin = same.get(item.sha256) or next((k.file_name for k in keep if k.sha256 == item.sha256), None)
            taken = self._taken(kb, item.file_name) if check_names else None
            if taken is not None:
                ended[item.id] = ("failed", taken.message)
            elif twin is not None and self._is_duplicate(claim.kind, item.file_name, twin):
                ended[item.id] = ("duplicate", f"same content as {twin}")
            else:
                keep.append(item)
        self._registry.end_files(claim, ended)
        return keep

    def _is_duplicate(self, kind: str, file_name: str, twin: str) -> bool:
        """A file whose content is registered already: under another name (the policy decides), or under its own
        name when the folder sync sees it unchanged."""
        if twin == file_name:
            return kind == "sync"
        return self._duplicates == "skip"

    def _taken(self, kb: KnowledgeBase, file_name: str) -> DuplicateFile | None:
        try:
            self._parts.files.refuse_taken(kb, file_name)
        except DuplicateFile as error:
            return error
        return None

    def _source(self, kb: KnowledgeBase, item: ClaimedFile) -> Path:
        if item.staged:
            return self._folders.resolve(item.staged)
        return self._parts.storage.content_path(kb.name, item.file_name)

    def _step(self, claim: Claim, file_ids: list[int], state: FileState) -> None:
        """Move on to the next stage, unless the job was cancelled or the worker is stopping meanwhile."""
        if self._stopping.is_set():
            raise Stopping
        if self._registry.is_cancelled(claim.job_id):
            raise Cancelled
        self._registry.move(claim, file_ids, state)
