"""This process's part in running jobs: its worker threads and a watch for files left by processes that died."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from server.jobs.queue import JobQueue, JobWorkers
from server.jobs.service import JobService

log = logging.getLogger(__name__)

PRUNE_INTERVAL_S = 3600.0  # ended jobs are kept for days: looking for old ones hourly is enough


class JobRuntime:
    def __init__(
        self,
        service: JobService,
        queue: JobQueue,
        stopping: threading.Event,
        *,
        workers: int,
        reclaim_interval_s: float = 5.0,
        repair: Callable[[], object] | None = None,
    ) -> None:
        self._service = service
        self._queue = queue
        self._stopping = stopping
        self._workers = JobWorkers(queue, workers, stopping)
        self._reclaim_interval_s = reclaim_interval_s
        self._repair = repair  # the write journal's recovery of dead processes, before their files are re-queued
        self._watch: threading.Thread | None = None
        self._started = False

    def start(self) -> None:
        """Resume what a crash interrupted, then take tasks (with no worker threads, only enqueue them)."""
        if self._started:
            return
        self._started = True
        if self._repair is not None:
            self._repair()
        self._service.resume()
        self._workers.start()
        self._watch = threading.Thread(target=self._reclaim_loop, name="zhiku-job-reclaim", daemon=True)
        self._watch.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop taking tasks; batches in work end, or go back to the queue at their next stage."""
        if not self._started:
            self._queue.close()
            return
        self._started = False
        self._stopping.set()
        self._workers.stop(timeout_s)
        if self._watch is not None:
            self._watch.join(timeout_s)
            self._watch = None
        self._queue.close()

    def _reclaim_loop(self) -> None:
        pruned_at = time.monotonic()  # start() pruned through resume()
        while not self._stopping.wait(self._reclaim_interval_s):
            try:
                if self._repair is not None:
                    self._repair()
                if released := self._service.reclaim():
                    log.warning("%d files of a worker that died went back to the queue", released)
                if time.monotonic() - pruned_at >= PRUNE_INTERVAL_S:
                    pruned_at = time.monotonic()
                    self._service.prune()
            except Exception:
                log.exception("could not look for files of dead workers or old jobs")
