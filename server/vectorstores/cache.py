"""An LRU cache of open vector stores, keyed by (knowledge base, embedding model).

Opening and closing run outside the cache's lock, so a slow open (a big FAISS file, a remote server) or a slow
close (its flush) holds up only callers of that same key. A key being opened or closed is marked busy; callers
of it wait, so nobody opens a second copy of a store, or reads a file another thread is still flushing.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

from server.errors import ConfigError
from server.vectorstores.base import VectorStore
from server.vectorstores.registry import StoreOptions, StoreSpec, create_store

logger = logging.getLogger(__name__)

_Key = tuple[str, str]
Opener = Callable[[StoreSpec, Mapping[str, StoreOptions] | None], VectorStore]


class _Entry(NamedTuple):
    spec: StoreSpec
    store: VectorStore


class StoreCache:
    """At most `capacity` open stores; the least recently used one is closed (so flushed) to make room.

    `options` are the backends' settings by name, handed to `opener` (`create_store`) with each spec.
    """

    def __init__(
        self,
        capacity: int = 8,
        *,
        options: Mapping[str, StoreOptions] | None = None,
        opener: Opener = create_store,
    ) -> None:
        if capacity < 1:
            raise ConfigError(f"the vector store cache needs a capacity of at least 1, got {capacity}")
        self._capacity = capacity
        self._options = dict(options or {})
        self._open = opener
        self._entries: OrderedDict[_Key, _Entry] = OrderedDict()
        self._busy: set[_Key] = set()  # keys being opened or closed right now
        self._cond = threading.Condition()

    def __len__(self) -> int:
        with self._cond:
            return len(self._entries)

    def get(self, spec: StoreSpec) -> VectorStore:
        """The open store for `spec`, opened on a miss. A changed spec (new dim, other backend) reopens it."""
        key = (spec.kb_name, spec.embed_model)
        while True:
            with self._cond:
                while key in self._busy:
                    self._cond.wait()
                entry = self._entries.get(key)
                if entry is not None and entry.spec == spec:
                    self._entries.move_to_end(key)
                    return entry.store
                self._busy.add(key)
                if entry is None:
                    break
                del self._entries[key]
            # A stale spec: close the old store, then loop round to open the new one.
            for error in self._close_claimed([(key, entry.store)]):
                logger.error("closing a vector store opened with an older spec failed", exc_info=error)
        return self._open_claimed(key, spec)

    def evict(self, kb_name: str, embed_model: str | None = None) -> int:
        """Close and forget the stores of `kb_name` (all its models when `embed_model` is None)."""

        def wanted(key: _Key) -> bool:
            return key[0] == kb_name and embed_model in (None, key[1])

        with self._cond:
            while any(wanted(key) for key in self._busy):
                self._cond.wait()
            claimed = self._claim([key for key in self._entries if wanted(key)])
        _raise_first(self._close_claimed(claimed))
        return len(claimed)

    def flush_all(self) -> None:
        with self._cond:
            stores = [entry.store for entry in self._entries.values()]
        errors = []
        for store in stores:
            try:
                store.flush()
            except Exception as exc:  # noqa: BLE001 - flush the others too; the first error is re-raised below
                errors.append(exc)
        _raise_first(errors)

    def close_all(self) -> None:
        with self._cond:
            while self._busy:
                self._cond.wait()
            claimed = self._claim(list(self._entries))
        _raise_first(self._close_claimed(claimed))

    # -- internals: the caller has marked the key busy; these clear it ---------------------------------------

    def _open_claimed(self, key: _Key, spec: StoreSpec) -> VectorStore:
        try:
            store = self._open(spec, self._options)
        except BaseException:
            self._release([key])
            raise
        with self._cond:
            self._entries[key] = _Entry(spec, store)
            overflow = list(self._entries)[: max(0, len(self._entries) - self._capacity)]
            evicted = self._claim(overflow)
            self._busy.discard(key)  # in the same breath as the insert, so no other thread sees it half-done
            self._cond.notify_all()
        for error in self._close_claimed(evicted):
            # The caller got the store they asked for; a failed eviction is reported, not raised at them.
            logger.error("closing an evicted vector store failed", exc_info=error)
        return store

    def _claim(self, keys: Iterable[_Key]) -> list[tuple[_Key, VectorStore]]:
        """Caller holds the lock: take entries out of the cache and mark them busy until closed."""
        claimed = [(key, self._entries.pop(key).store) for key in keys]
        self._busy.update(key for key, _ in claimed)
        return claimed

    def _close_claimed(self, claimed: list[tuple[_Key, VectorStore]]) -> list[Exception]:
        errors: list[Exception] = []
        try:
            for _, store in claimed:
                try:
                    store.close()
                except Exception as exc:  # noqa: BLE001 - close the others too; the caller decides what to raise
                    errors.append(exc)
        finally:
            self._release([key for key, _ in claimed])
        return errors

    def _release(self, keys: list[_Key]) -> None:
        with self._cond:
            self._busy.difference_update(keys)
            self._cond.notify_all()


def _raise_first(errors: list[Exception]) -> None:
    if errors:
        raise errors[0]
