"""Named points of the write path where the crash tests stop a real server, to kill it there with SIGKILL.

Nothing happens at a point unless the settings' `crash_test.pause_at` names it: then the request that reaches it
writes `<marker_dir>/<point>` and waits forever, until the test kills the process. docs/write-path.md lists the
points.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from pathlib import Path


class CrashProbes:
    def __init__(self, pause_at: Collection[str] = (), marker_dir: Path | None = None) -> None:
        self._pause_at = frozenset(pause_at)
        self._marker_dir = marker_dir

    def reached(self, point: str) -> None:
        if point not in self._pause_at:
            return
        if self._marker_dir is not None:
            self._marker_dir.mkdir(parents=True, exist_ok=True)
            (self._marker_dir / point.replace(":", "-")).touch()
        threading.Event().wait()  # until the test kills this process
