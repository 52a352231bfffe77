"""Named points of the write path where the crash tests stop a real server, to kill it there with SIGKILL.

Nothing happens at a point unless the settings' `crash_test.pause_at` names it: then the request that reaches it
writes `<marker_dir>/<point>` and waits forever, until the test kills the process. `point#n` waits the n-th time
the point is reached (a background job killed after some of its batches were written). docs/write-path.md lists
the points.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from pathlib import Path


class CrashProbes:
    def __init__(self, pause_at: Collection[str] = (), marker_dir: Path | None = None) -> None:
        self._pause_at = {name: int(count or 1) for name, _, count in (item.partition("#") for item in pause_at)}
        self._names = {item.partition("#")[0]: item for item in pause_at}
        self._marker_dir = marker_dir
        self._seen: dict[str, int] = {}
        self._guard = threading.Lock()

    def reached(self, point: str) -> None:
        if point not in self._pause_at:
            return
        with self._guard:
            self._seen[point] = self._seen.get(point, 0) + 1
            if self._seen[point] != self._pause_at[point]:
                return
        if self._marker_dir is not None:
            self._marker_dir.mkdir(parents=True, exist_ok=True)
            (self._marker_dir / self._names[point].replace(":", "-")).touch()
        threading.Event().wait()  # until the test kills this process
