"""This process's claim on a data dir, so recovery never undoes another live process's write.

Each process that writes holds `<data_dir>/.writers/<id>.lock` locked (flock) for as long as it runs; the kernel
drops the lock when the process dies, kill -9 included. Journal rows carry the lease id of the process that wrote
them; start-up recovery and the sweep of leftovers run only when every other lease is dead.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import uuid
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)


class WriterLease:
    def __init__(self, data_dir: Path) -> None:
        self._folder = data_dir / ".writers"
        self.id = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._handle: IO[bytes] | None = None

    def acquire(self) -> None:
        self._folder.mkdir(parents=True, exist_ok=True)
        handle = (self._folder / f"{self.id}.lock").open("wb")
        fcntl.flock(handle, fcntl.LOCK_EX)
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing drops the lock
            self._handle = None
            (self._folder / f"{self.id}.lock").unlink(missing_ok=True)

    def others_alive(self) -> list[str]:
        """Lease ids of other live processes on this data dir; the lock files of dead ones are removed."""
        alive = []
        for path in sorted(self._folder.glob("*.lock")) if self._folder.is_dir() else []:
            if path.stem != self.id and _held(path):
                alive.append(path.stem)
        return alive


def _held(path: Path) -> bool:
    """Whether a live process holds the lock file; a dead holder's file is removed."""
    try:
        handle = path.open("rb")
    except OSError:
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        with contextlib.suppress(OSError):
            path.unlink()
        return False
