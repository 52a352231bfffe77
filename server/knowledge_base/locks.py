"""One lock per knowledge base: writes to a KB are serialised, searches never take it."""

from __future__ import annotations

import threading


class KbLocks:
    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def __call__(self, kb_name: str) -> threading.Lock:
        # Not reentrant on purpose: services never nest it, and a plain lock may be released by a thread that did
        # not take it (a streamed rebuild can move between threads).
        with self._guard:
            return self._locks.setdefault(kb_name, threading.Lock())
