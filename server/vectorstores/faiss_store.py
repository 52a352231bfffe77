"""FAISS vector store: an inner-product index over L2-normalised vectors, kept in one file.

Inner product on unit vectors is the cosine similarity, so scores need no conversion beyond clamping. The
index is exact while the KB is small and an IVF index past a size threshold (`faiss_index.AnnPolicy`); the
switch happens in `flush()`, built from a snapshot while searches go on.

Writes stay in memory: `add` and `delete` never touch the disk. The caller calls `flush()` once after a batch
(`close()` flushes too). The data file is replaced atomically, so after a crash it holds the last flushed
state, complete, never a half-written one.

Concurrency: searches, gets and counts share a read lock and run side by side; add, delete and drop take the
write lock one at a time. `flush()` only *reads* the index while it copies a snapshot, then writes the file
with no lock held, so searches are never stuck behind the disk.
"""

from __future__ import annotations

import copy
import logging
import shutil
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import faiss
import numpy as np
import numpy.typing as npt

from server.errors import (
    DuplicateChunkId,
    InvalidInput,
    StoreCorrupted,
    StoreDimensionMismatch,
    StoreMissing,
    StoreUnavailable,
)
from server.vectorstores import faiss_index as ann
from server.vectorstores.base import Hit, StoredChunk, Vectors, cosine_to_score
from server.vectorstores.checks import checked_batch, metadata_matches, query_row
from server.vectorstores.faiss_file import (
    DATA_FILE,
    FileFormatError,
    StoreData,
    read_store_file,
    write_store_file,
)
from server.vectorstores.rwlock import ReadWriteLock

if TYPE_CHECKING:
    from server.vectorstores.registry import FaissOptions, StoreSpec

log = logging.getLogger(__name__)

_FORMAT_VERSION = 1
_EXACT_SUBSET_MAX = 20_000  # filtered searches on an IVF index score at most this many rows exactly


class _Doc(NamedTuple):
    iid: int  # FAISS's int64 label
    text: str
    metadata: dict[str, Any]  # JSON-plain, never mutated after insertion (snapshots share it)


class _Snapshot(NamedTuple):
    generation: int
    vectors: Vectors  # row i has label labels[i]
    labels: npt.NDArray[np.int64]
    docs: dict[str, _Doc]
    next_iid: int
    layout: ann.IvfLayout | None  # set when the index is IVF; rows are then grouped by list


class FaissStore:
    """One knowledge base's vectors for one embedding model, in `directory`."""

    def __init__(self, directory: Path, dim: int, *, kb_name: str = "KB", policy: ann.AnnPolicy | None = None) -> None:
        if dim <= 0:
            raise InvalidInput(f"vector dimension must be positive, got {dim}")
        self._directory = Path(directory)
        self._dim = dim
        self._kb_name = kb_name
        self._policy = policy or ann.AnnPolicy()
        self._lock = ReadWriteLock()
        # Serialises flush/create/drop with each other so an older snapshot never overwrites a newer file.
        self._flush_lock = threading.Lock()
        self._generation = 0  # bumped by every change; the file holds `_saved_generation`
        self._saved_generation = 0
        self._closed = False
        self._reset()
        self._exists = self.path.exists()  # False until create(), and again after drop()
        if self._exists:
            self._load()
            self._reindex_if_due()

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def path(self) -> Path:
        return self._directory / DATA_FILE

    @property
    def _what(self) -> str:
        """How messages name this store: by its knowledge base, never by its place on disk."""
        return f"the FAISS store of knowledge base {self._kb_name!r}"

    def create(self) -> None:
        with self._flush_lock:
            if not self.path.exists():
                self._write(self._snapshot())
            self._exists = True

    def drop(self) -> None:
        with self._flush_lock, self._lock.write():
            self._reset()
            self._exists = False
            self._generation += 1
            self._saved_generation = self._generation
            try:
                shutil.rmtree(self._directory, ignore_errors=False)
            except FileNotFoundError:
                pass
            except OSError as exc:
                advice = "check its permissions"
                raise StoreUnavailable(f"could not remove {self._what}: {exc.strerror or exc}; {advice}") from exc

    def add(
        self,
        texts: Sequence[str],
        vectors: Vectors,
        metadatas: Sequence[Mapping[str, Any]],
        ids: Sequence[str] | None = None,
    ) -> list[str]:
        """Add chunks in memory; call `flush()` after the batch to persist them."""
        batch = checked_batch(texts, vectors, metadatas, ids, self._dim)
        n = len(batch.ids)
        if n == 0:
            return []
        with self._lock.write():
            self._check_writable()
            clash = [i for i in batch.ids if i in self._docs]
            if clash:
                raise DuplicateChunkId(f"{len(clash)} ids already exist in the store, e.g. {clash[:3]}")
            first = self._next_iid
            self._index.add_with_ids(batch.vectors, np.arange(first, first + n, dtype=np.int64))
            for offset, (chunk_id, text, meta) in enumerate(zip(batch.ids, batch.texts, batch.metadatas, strict=True)):
                self._docs[chunk_id] = _Doc(first + offset, text, meta)
                self._by_iid[first + offset] = chunk_id
            self._next_iid += n
            self._generation += 1
        return batch.ids

    def delete(self, ids: Sequence[str]) -> int:
        """Delete in memory; call `flush()` afterwards to persist."""
        with self._lock.write():
            self._check_writable()
            found = [i for i in dict.fromkeys(ids) if i in self._docs]
            if not found:
                return 0
            iids = np.array([self._docs[i].iid for i in found], dtype=np.int64)
            self._index.remove_ids(ann.removal_selector(self._index, iids))
            for chunk_id in found:
                del self._by_iid[self._docs.pop(chunk_id).iid]
            self._generation += 1
        return len(found)

    def search(
        self,
        vector: Vectors,
        top_k: int,
        score_threshold: float = 0.0,
        where: Mapping[str, Any] | None = None,
    ) -> list[Hit]:
        query = query_row(vector, self._dim, top_k)
        with self._lock.read():
            self._check_exists()
            found = self._nearest(query, top_k, where)
        scored = ((cid, doc, cosine_to_score(ip)) for cid, doc, ip in found)
        return [
            Hit(cid, doc.text, copy.deepcopy(doc.metadata), score)
            for cid, doc, score in scored
            if score >= score_threshold
        ]

    def get(self, ids: Sequence[str]) -> list[StoredChunk]:
        with self._lock.read():
            self._check_exists()
            found = [(i, self._docs[i]) for i in ids if i in self._docs]
        return [StoredChunk(i, doc.text, copy.deepcopy(doc.metadata)) for i, doc in found]

    def vectors(self, ids: Sequence[str]) -> dict[str, Vectors]:
        """One copy of the index per call (as a flush makes): ask for many ids at once."""
        with self._lock.read():
            self._check_exists()
        snapshot = self._snapshot()
        row_of = {int(label): row for row, label in enumerate(snapshot.labels)}
        wanted = [(i, snapshot.docs[i].iid) for i in ids if i in snapshot.docs]
        return {i: np.array(snapshot.vectors[row_of[iid]], dtype=np.float32) for i, iid in wanted if iid in row_of}

    def count(self) -> int:
        with self._lock.read():
            self._check_exists()
            return len(self._docs)

    def flush(self) -> None:
        """Persist pending writes (a no-op when nothing changed since the last flush)."""
        with self._flush_lock:
            self._reindex_if_due()
            snapshot = self._snapshot()
            if snapshot.generation != self._saved_generation:
                self._write(snapshot)

    @property
    def policy(self) -> ann.AnnPolicy:
        return self._policy

    @property
    def nlist(self) -> int:
        """The IVF index's list count (0 while exact)."""
        return int(self._index.nlist) if ann.is_ivf(self._index) else 0

    @property
    def approximate(self) -> bool:
        """Whether searches use the IVF index (the KB has passed the policy's threshold)."""
        return ann.is_ivf(self._index)

    def close(self) -> None:
        """Flush; later adds and deletes on this instance fail, reads still work."""
        with self._lock.write():  # waits for in-flight writes, then refuses new ones
            self._closed = True
        self.flush()

    # -- internals -------------------------------------------------------------------------------------------

    def _check_writable(self) -> None:
        """Caller holds the write lock."""
        if self._closed:
            raise StoreUnavailable("this FAISS store was closed; open it again (StoreCache.get)")
        self._check_exists()

    def _check_exists(self) -> None:
        if not self._exists:
            raise StoreMissing(
                f"{self._what} does not exist; "
                f"rebuild it with: python init_database.py --recreate-vs -n {self._kb_name}"
            )

    def _reset(self) -> None:
        self._index: ann.FaissIndex = ann.exact_index(self._dim)
        self._trained_on = 0  # chunks the IVF index was trained on
        self._docs: dict[str, _Doc] = {}
        self._by_iid: dict[int, str] = {}
        self._next_iid = 0

    def _reindex_if_due(self) -> None:
        """Switch between exact and IVF (or retrain) when the policy says so. The new index is built from a
        snapshot with no lock held; it replaces the old one only if nothing was written meanwhile (else the
        next flush tries again)."""
        with self._lock.read():
            action = ann.plan(self._policy, self._index, len(self._docs), self._trained_on)
        if action == "keep":
            return
        snapshot = self._snapshot()
        if action == "ivf":
            index, trained_on = ann.train_ivf(snapshot.vectors, snapshot.labels)
        else:
            index, trained_on = ann.exact_index(self._dim), 0
            index.add_with_ids(snapshot.vectors, snapshot.labels)
        with self._lock.write():
            if self._generation == snapshot.generation:
                self._index, self._trained_on = index, trained_on
                self._generation += 1  # the file must now record the new layout

    def _nearest(self, query: Vectors, top_k: int, where: Mapping[str, Any] | None) -> list[tuple[str, _Doc, float]]:
        """Caller holds the read lock."""
        selector = None
        limit = len(self._docs)
        allowed: list[int] = []
        if where:
            allowed = _matching_iids(self._docs.values(), where)
            selector = faiss.IDSelectorBatch(np.array(allowed, dtype=np.int64))
            limit = len(allowed)
        k = min(top_k, limit)
        if k == 0:
            return []
        # One query is faster on one thread: OpenMP's team start-up costs more than a flat scan of 100k vectors
        # saves, and server threads would otherwise fight over the cores. The setting is per calling thread.
        faiss.omp_set_num_threads(1)
        if where and ann.is_ivf(self._index) and limit <= _EXACT_SUBSET_MAX:
            # A filter that leaves few rows (one file, say) may leave none in the probed lists: score them all.
            ips, iids = ann.exact_subset(self._index, query, allowed, k)
        else:
            params = ann.search_params(self._index, self._policy, selector)  # keeps `selector` referenced
            scores, labels = self._index.search(query, k, params=params)
            ips, iids = scores[0].tolist(), labels[0].tolist()
        found = []
        for ip, label in zip(ips, iids, strict=True):
            if label >= 0:
                chunk_id = self._by_iid[label]
                found.append((chunk_id, self._docs[chunk_id], ip))
        return found

    def _snapshot(self) -> _Snapshot:
        # Under the read lock: searches go on; writers wait only for the in-memory copy (about 0.1 s per 100k
        # vectors of dim 384), never for the disk. A shallow copy of the docstore is enough because `_Doc`s and
        # their metadata are never mutated.
        with self._lock.read():
            if ann.is_ivf(self._index):
                vectors, labels, lists = ann.ivf_contents(self._index)
                layout = ann.IvfLayout(ann.centroids(self._index), lists, self._trained_on)
            else:
                vectors = faiss.downcast_index(self._index.index).reconstruct_n(0, self._index.ntotal)
                labels, layout = faiss.vector_to_array(self._index.id_map), None
            return _Snapshot(self._generation, vectors, labels, dict(self._docs), self._next_iid, layout)

    def _write(self, snapshot: _Snapshot) -> None:
        """Caller holds `_flush_lock` but not the read/write lock."""
        info = {"version": _FORMAT_VERSION, "dim": self._dim, "next_iid": snapshot.next_iid}
        chunks = [[doc.iid, cid, doc.text, doc.metadata] for cid, doc in snapshot.docs.items()]
        try:
            data = StoreData(snapshot.vectors, snapshot.labels, info, chunks, snapshot.layout)
            write_store_file(self.path, data)
        except OSError as exc:
            advice = "check disk space and permissions"
            raise StoreUnavailable(f"could not write {self._what}: {exc.strerror or exc}; {advice}") from exc
        self._saved_generation = snapshot.generation

    def _load(self) -> None:
        try:
            data = read_store_file(self.path)
            docs = {str(cid): _Doc(int(iid), str(text), dict(meta)) for iid, cid, text, meta in data.chunks}
            dim, next_iid = int(data.info["dim"]), int(data.info["next_iid"])
        except PermissionError as exc:
            raise StoreUnavailable(f"cannot read {self._what}: {exc.strerror or exc}; check file permissions") from exc
        except FileFormatError as exc:
            raise self._corrupted(f"is unreadable ({exc})") from exc
        except (KeyError, TypeError, ValueError) as exc:  # a docstore of the wrong shape
            raise self._corrupted(f"has a broken docstore ({type(exc).__name__}: {exc})") from exc
        file_dim = data.vectors.shape[1]
        if dim != self._dim or file_dim != self._dim:
            raise StoreDimensionMismatch(
                f"{self._what} holds {file_dim}-dim vectors but the embedding model gives "
                f"{self._dim}; rebuild it with: python init_database.py --recreate-vs -n {self._kb_name}"
            )
        labels = data.labels.tolist()
        if sorted(labels) != sorted({doc.iid for doc in docs.values()}) or len(docs) != len(labels):
            raise self._corrupted("has vectors and texts that do not match")
        if labels and next_iid <= max(labels):
            raise self._corrupted("has a label counter behind its labels")
        if data.layout is not None:
            self._index = ann.ivf_from_layout(data.vectors, data.labels, data.layout)
            self._trained_on = data.layout.trained_on
        else:
            self._index.add_with_ids(np.ascontiguousarray(data.vectors), data.labels)
        self._docs, self._next_iid = docs, next_iid
        self._by_iid = {doc.iid: cid for cid, doc in docs.items()}

    def _corrupted(self, what: str) -> StoreCorrupted:
        log.error("FAISS store file %s %s", self.path, what)  # the place on disk is for the log, not for answers
        return StoreCorrupted(
            f"the file of {self._what} {what}; "
            f"rebuild it with: python init_database.py --recreate-vs -n {self._kb_name}"
        )


def open_store(spec: StoreSpec, options: FaissOptions) -> FaissStore:
    """The registry's entry point (server.vectorstores.registry)."""
    policy = ann.AnnPolicy(
        threshold=options.ann_threshold, probe_fraction=options.ann_probe_fraction, max_probe=options.ann_max_probe
    )
    return FaissStore(spec.directory, spec.dim, kb_name=spec.kb_name, policy=policy)


def _matching_iids(docs: Iterable[_Doc], where: Mapping[str, Any]) -> list[int]:
    """A linear scan of the metadata FAISS keeps (about 6 ms per 100k chunks for one key); its labels become the
    search's IDSelector, so the filter applies inside the index."""
    return [doc.iid for doc in docs if metadata_matches(doc.metadata, where)]
