"""Folder sync: a knowledge base that follows its content/ folder.

`FolderSync.scan` compares the folder with the registry: new files and files whose SHA-256 changed go to a
background job ("sync"), registered files gone from the folder are removed from the KB. `FolderWatcher` runs a
scan of a KB within about a second (`debounce_ms`) of a change under its content folder, using watchfiles
(inotify on Linux), for the KBs whose `sync_folder` is on; and once at start for changes made while it was off.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from watchfiles import Change, watch

from server.db import repository as repo
from server.jobs.registry import JobRegistry
from server.jobs.service import JobService
from server.knowledge_base.catalog import KbCatalog
from server.knowledge_base.ingest import file_sha256
from server.knowledge_base.storage import KbStorage
from server.knowledge_base.writer import KbWriter
from server.loaders import LOADERS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncReport:
    knowledge_base_name: str
    queued: list[str] = field(default_factory=list)  # new or changed files, sent to job `job_id`
    removed: list[str] = field(default_factory=list)  # registered files no longer in the folder
    unchanged: int = 0
    job_id: str | None = None


class FolderSync:
    def __init__(
        self, catalog: KbCatalog, storage: KbStorage, writer: KbWriter, jobs: JobService, registry: JobRegistry
    ) -> None:
        self._catalog = catalog
        self._storage = storage
        self._writer = writer
        self._jobs = jobs
        self._registry = registry
        self._scanning = threading.Lock()  # one scan at a time: two would queue the same change twice

    def set_enabled(self, kb_name: str, enabled: bool) -> bool:
        with self._catalog.session() as session:
            kb = repo.require_kb(session, kb_name)
            kb.sync_folder = enabled
            return kb.sync_folder

    def synced(self) -> list[str]:
        """The KBs that follow their folder."""
        with self._catalog.session() as session:
            return [kb.name for kb in repo.list_kbs(session) if kb.sync_folder]

    def scan(self, kb_name: str) -> SyncReport:
        """Bring the KB in line with its folder: changes queued as one job, deletions applied now."""
        with self._scanning:
            kb = self._catalog.require(kb_name)
            registered = self._catalog.registered(kb)
            busy = self._registry.in_flight(kb_name)  # queued already: not again until that job has it
            failed = self._registry.failed_versions(kb_name)  # a file that failed is tried again once it changes
            present = self._storage.content_files(kb_name)
            changed, unchanged = [], 0
            for name in present:
                digest, custom = registered.get(name, ("", False))
                if name in busy or custom or Path(name).suffix.lower() not in LOADERS.extensions():
                    continue  # hand-written chunks are kept; a type no loader reads would only fail
                current = file_sha256(self._storage.content_path(kb_name, name))
                if digest == current:
                    unchanged += 1
                elif (name, current) not in failed:
                    changed.append(name)
            on_disk = set(present)
            gone = [name for name in registered if name not in on_disk and name not in busy]
            if gone:
                self._writer.remove(kb_name, gone)
            job_id = self._jobs.submit_folder_files(kb_name, changed, kind="sync").job_id if changed else None
        if changed or gone:
            log.info("folder sync of %s: %d files queued, %d removed", kb_name, len(changed), len(gone))
        return SyncReport(kb_name, changed, gone, unchanged, job_id)


class FolderWatcher:
    """A thread that scans a synced KB when something changes under `<data_dir>/<kb>/content/`."""

    def __init__(
        self,
        sync: FolderSync,
        data_dir: Path,
        *,
        debounce_ms: int = 1000,
        only: Collection[str] = (),
    ) -> None:
        self._sync = sync
        self._data_dir = data_dir.resolve()  # watchfiles reports resolved paths
        self._debounce_ms = debounce_ms
        self._only = frozenset(only)  # init_database.py --watch -n: these KBs, whatever their setting
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._data_dir.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="zhiku-folder-sync", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _targets(self) -> set[str]:
        return set(self._only) if self._only else set(self._sync.synced())

    def _run(self) -> None:
        self._scan(self._targets())  # what changed while nobody watched
        changes = watch(
            self._data_dir,
            watch_filter=self._in_content,
            debounce=self._debounce_ms,
            stop_event=self._stop,
            rust_timeout=1000,
            yield_on_timeout=False,
            raise_interrupt=False,
        )
        for batch in changes:
            self._scan(self._kbs_of(batch) & self._targets())

    def _scan(self, kb_names: Iterable[str]) -> None:
        for name in sorted(kb_names):
            try:
                self._sync.scan(name)
            except Exception:
                log.exception("folder sync of %s failed; it is tried again at the next change", name)

    def _in_content(self, _change: Change, path: str) -> bool:
        parts = Path(path).relative_to(self._data_dir).parts if path.startswith(str(self._data_dir)) else ()
        return len(parts) >= 2 and parts[1] == "content" and not parts[-1].startswith(".")

    def _kbs_of(self, batch: set[tuple[Change, str]]) -> set[str]:
        return {Path(path).relative_to(self._data_dir).parts[0] for _, path in batch}
