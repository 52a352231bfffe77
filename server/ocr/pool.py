"""A bounded pool of OCR worker processes: pages are read there, so a big scan never holds the API's threads
busy with CPU work, and a page that takes too long (or crashes its worker) costs only that worker.

Workers start on the first page that needs one (RapidOCR loads inside them), and a worker that timed out or died
is killed and replaced by a fresh one on the next page.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import threading
from multiprocessing.connection import Connection
from typing import Any

from server.errors import OcrFailed, OcrUnavailable
from server.ocr.engine import OcrJob, OcrText, serve

log = logging.getLogger(__name__)


class _Worker:
    def __init__(self, context: Any, threads: int) -> None:
        self._conn, child = context.Pipe()
        self._process = context.Process(target=serve, args=(child, threads), name="zhiku-ocr", daemon=True)
        self._process.start()
        child.close()

    def ask(self, job: OcrJob, timeout_s: float) -> tuple[str, Any]:
        """The worker's answer; TimeoutError when none came in time, EOFError when the worker died."""
        conn: Connection = self._conn
        conn.send(job)
        if not conn.poll(timeout_s):
            raise TimeoutError
        reply: tuple[str, Any] = conn.recv()
        return reply

    def stop(self) -> None:
        self._conn.close()
        if self._process.is_alive():
            self._process.kill()
        self._process.join(timeout=5)


class OcrPool:
    """At most `workers` processes, each running ONNX with `threads` threads."""

    def __init__(self, workers: int, *, threads: int = 1) -> None:
        self._threads = threads
        self._context = multiprocessing.get_context("spawn")  # never fork a process that runs threads
        self._slots: queue.LifoQueue[_Worker | None] = queue.LifoQueue()
        for _ in range(workers):
            self._slots.put(None)  # a free slot with no process yet
        self._workers = workers
        self._closed = threading.Event()

    @property
    def size(self) -> int:
        return self._workers

    def read(self, job: OcrJob, *, timeout_s: float, wait_s: float) -> OcrText:
        """OCR one page: wait at most `wait_s` for a free worker, then `timeout_s` for its answer.

        Raises OcrFailed (timed out, worker died, page unreadable) or OcrUnavailable (the pool is closed, or no
        worker came free in time)."""
        if self._closed.is_set():
            raise OcrUnavailable("OCR is shutting down; upload the file again once the server is back")
        try:
            worker = self._slots.get(timeout=max(0.0, wait_s))
        except queue.Empty:
            raise OcrUnavailable(
                f"every OCR worker ({self._workers}) stayed busy for {wait_s:.0f} s; upload fewer scans at once "
                "or raise ocr.workers"
            ) from None
        try:
            worker = worker or _Worker(self._context, self._threads)
            status, value = worker.ask(job, timeout_s)
        except TimeoutError:
            worker = _stopped(worker)  # a slot without a process: the next page starts a fresh one
            raise OcrFailed(f"OCR of a page took longer than {timeout_s:.0f} s (ocr.page_timeout_s)") from None
        except (EOFError, OSError, BrokenPipeError) as err:
            worker = _stopped(worker)
            raise OcrFailed(f"the OCR worker stopped while reading a page ({type(err).__name__})") from err
        finally:
            self._slots.put(worker)
        if status != "ok":
            raise OcrFailed(f"the page could not be read by OCR ({value})")
        result: OcrText = value
        return result

    def close(self) -> None:
        self._closed.set()
        for _ in range(self._workers):
            try:
                worker = self._slots.get(timeout=1)
            except queue.Empty:
                continue  # a page still in work: its worker is a daemon and ends with this process
            if worker is not None:
                worker.stop()


def _stopped(worker: _Worker | None) -> _Worker | None:
    if worker is not None:
        worker.stop()
    return None
