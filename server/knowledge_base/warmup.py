"""Loads what the first searches will need while the API waits for them: embedding models and KB indexes."""

from __future__ import annotations

import logging
import threading
import time

from server.knowledge_base.catalog import KbCatalog
from server.knowledge_base.search import SearchService

log = logging.getLogger(__name__)


class Warmer:
    """Searches the `count` most recently written KBs once, in a background thread started with the API.

    A model or index loads on first use; without this the first user of each KB waited for it (seconds for a
    sentence-transformers model, more for a big FAISS index) while every later search took milliseconds.
    """

    def __init__(self, catalog: KbCatalog, search: SearchService, count: int) -> None:
        self._catalog = catalog
        self._search = search
        self._count = count
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.warmed: list[str] = []
        self.done = threading.Event()

    def start(self) -> None:
        if self._count <= 0 or self._thread is not None:
            self.done.set()
            return
        self._thread = threading.Thread(target=self._run, name="zhiku-warm-up", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop before the next KB; waits for the search under way (it may be loading a model)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        started = time.perf_counter()
        try:
            for name in self._catalog.recent_names(self._count):
                if self._stop.is_set():
                    return
                if self._search.warm_up(name):
                    self.warmed.append(name)
            log.info("warmed %d knowledge base(s) in %.1f s", len(self.warmed), time.perf_counter() - started)
        except Exception:  # the API serves without a warm-up; the cause belongs in the log, not in a dead thread
            log.exception("warm-up stopped")
        finally:
            self.done.set()
