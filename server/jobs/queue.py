"""The huey queue that carries ingestion tasks, and the worker threads that take them.

One task is a batch of one job's files ("zhiku.ingest", job id and file ids). The registry, not the queue, says
what is left to do: a task whose files were taken or ended already does nothing, so a task sent twice (after a
restart) is harmless. huey's own consumer installs signal handlers, which the API process keeps for uvicorn;
`JobWorkers` runs huey's dequeue/execute in threads this process supervises and stops.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from huey import Huey, RedisHuey, SqliteHuey

from server.errors import QueueUnavailable

log = logging.getLogger(__name__)

TASK_NAME = "zhiku.ingest"
BatchHandler = Callable[[str, Sequence[int]], bool]
"""Runs one batch; False: this process must not, so the task goes back to the queue for another."""
_SEND_BACK_WAIT_S = 1.0


def make_huey(kind: Literal["sqlite", "redis"], *, sqlite_file: Path, redis_url: str) -> Huey:
    """The queue's storage: a SQLite file (one machine) or Redis (workers anywhere that reaches it)."""
    if kind == "sqlite":
        sqlite_file.parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey("zhiku", filename=str(sqlite_file), results=False)
    return RedisHuey("zhiku", url=redis_url, results=False)


class JobQueue:
    def __init__(self, huey: Huey, handler: BatchHandler) -> None:
        self._huey = huey
        self._handler = handler
        self._task = huey.task(name=TASK_NAME)(self._run)

    def _run(self, job_id: str, file_ids: list[int]) -> None:
        if not self._handler(job_id, file_ids):
            time.sleep(_SEND_BACK_WAIT_S)  # no hot loop while only this process is there to take it
            self._task(job_id, file_ids)

    def enqueue(self, job_id: str, file_ids: Sequence[int], batch_size: int) -> None:
        """One task per `batch_size` files; raises QueueUnavailable when the queue's storage is unreachable."""
        try:
            for start in range(0, len(file_ids), batch_size):
                self._task(job_id, list(file_ids[start : start + batch_size]))
        except Exception as error:  # redis-py and sqlite3 raise their own connection errors
            log.error("the job queue refused a task: %s", error)
            raise QueueUnavailable(
                "the job queue cannot be reached (jobs.queue / jobs.redis_url); is redis-server running?"
            ) from error

    def pending(self) -> int:
        return int(self._huey.pending_count())

    def flush(self) -> None:
        """Forget every queued task (start-up, when the registry re-enqueues what is left)."""
        self._huey.flush()

    def run_next(self) -> bool:
        """Execute one queued task in this thread; False when the queue was empty."""
        task = self._huey.dequeue()
        if task is None:
            return False
        self._huey.execute(task)
        return True

    def close(self) -> None:
        self._huey.storage.close()


class JobWorkers:
    """`count` threads taking tasks until `stop()`; each finishes (or hands back) the batch it holds first."""

    def __init__(self, queue: JobQueue, count: int, stopping: threading.Event, *, idle_wait_s: float = 0.2) -> None:
        self._queue = queue
        self._count = count
        self._stopping = stopping
        self._idle_wait_s = idle_wait_s
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for number in range(self._count):
            thread = threading.Thread(target=self._loop, name=f"zhiku-job-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout_s)
            if thread.is_alive():
                log.warning("%s did not stop within %.0f s", thread.name, timeout_s)
        self._threads.clear()

    def _loop(self) -> None:
        wait = self._idle_wait_s
        while not self._stopping.is_set():
            try:
                ran = self._queue.run_next()
            except Exception:
                log.exception("the job queue failed; trying again in a moment")
                ran = False
            if ran:
                wait = self._idle_wait_s
            else:
                self._stopping.wait(wait)
                wait = min(wait * 1.5, 0.5)
