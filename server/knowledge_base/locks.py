"""One lock per knowledge base: writes to a KB are serialised, searches never take it.

With a folder, the lock also holds `<folder>/<kb>.lock` (flock) while taken, so writer processes on one data dir
(the API and separate job workers) take turns too; the kernel drops it when a process dies.
"""

from __future__ import annotations

import fcntl
import hashlib
import threading
from pathlib import Path
from types import TracebackType
from typing import IO


class KbLock:
    def __init__(self, path: Path | None) -> None:
        # Not reentrant on purpose: services never nest it, and a plain lock may be released by a thread that did
        # not take it (a streamed rebuild can move between threads).
        self._thread = threading.Lock()
        self._path = path
        self._handle: IO[bytes] | None = None

    def __enter__(self) -> KbLock:
        self._thread.acquire()
        if self._path is not None:
            try:
                handle = self._path.open("ab")
                fcntl.flock(handle, fcntl.LOCK_EX)
            except BaseException:
                self._thread.release()
                raise
            self._handle = handle
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._handle is not None:
            self._handle.close()  # closing drops the flock
            self._handle = None
        self._thread.release()


class KbLocks:
    def __init__(self, folder: Path | None = None) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, KbLock] = {}
        self._folder = folder

    def __call__(self, kb_name: str) -> KbLock:
        with self._guard:
            lock = self._locks.get(kb_name)
            if lock is None:
                lock = self._locks[kb_name] = KbLock(self._file(kb_name))
            return lock

    def _file(self, kb_name: str) -> Path | None:
        if self._folder is None:
            return None
        self._folder.mkdir(parents=True, exist_ok=True)
        return self._folder / f"{hashlib.sha256(kb_name.encode()).hexdigest()[:24]}.lock"
