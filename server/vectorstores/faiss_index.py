"""The FAISS store's in-memory index: exact while a KB is small, an inverted-file (IVF) index once it is large.

An exact scan costs about 0.18 ms per 1,000 vectors of dim 384 on one core, so at 100k chunks a search takes
18 ms and at 1M chunks 180 ms. An IVF index clusters the vectors around `nlist` centroids and scans only the
`nprobe` lists nearest the query. IVF rather than HNSW: it trains in seconds instead of building for minutes
on two cores, it supports deletion, and its vectors are stored unchanged, so scores stay exact cosines and
the data file holds the same raw vectors either way.

The switch happens at `AnnPolicy.threshold` chunks (and back below half of it); an IVF index is retrained
when the KB has grown to `regrow` times the size it was trained on, so lists stay short.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, NamedTuple

import faiss
import numpy as np
import numpy.typing as npt

from server.vectorstores.base import Vectors

# FAISS's type stubs lack most of the IVF API (nlist, invlists, DirectMap, SearchParametersIVF's fields).
FaissIndex = Any
_SAMPLES_PER_LIST = 64  # k-means training points per centroid
_MIN_SAMPLES_PER_LIST = 39  # FAISS warns below this
_MIN_LISTS, _MAX_LISTS = 64, 65536


@dataclass(frozen=True)
class AnnPolicy:
    """When the FAISS store leaves exact search, and how hard the IVF index looks."""

    threshold: int = 50_000  # chunks; 0 turns approximate search off
    probe_fraction: float = 1 / 16  # lists scanned per query, as a share of nlist …
    min_probe: int = 16
    max_probe: int = 96  # … within these bounds (see bench/faiss_ann.py and docs/benchmarks.md)
    regrow: float = 4.0

    def wants_ivf(self, count: int) -> bool:
        return self.threshold > 0 and count >= self.threshold

    def nprobe(self, nlist: int) -> int:
        """Measured on real embeddings, recall depends on how many lists are scanned more than on what share
        of them: 79 of 1,264 lists at 100k chunks and 63 of 4,000 at 1M both find over 97 % of the exact top
        10. Hence a share for small indexes and a ceiling that keeps large ones fast."""
        wanted = min(self.max_probe, max(self.min_probe, math.ceil(nlist * self.probe_fraction)))
        return min(nlist, wanted)


class IvfLayout(NamedTuple):
    """What the data file keeps of an IVF index so a reopen needs no training: centroids, each row's list."""

    centroids: npt.NDArray[np.float32]
    lists: npt.NDArray[np.int64]
    trained_on: int


def nlist_for(count: int) -> int:
    """About 4·√n lists, but never so many that k-means has fewer than `_MIN_SAMPLES_PER_LIST` points each."""
    wanted = min(_MAX_LISTS, max(_MIN_LISTS, int(4 * math.sqrt(count))))
    return max(1, min(wanted, count // _MIN_SAMPLES_PER_LIST))


def exact_index(dim: int) -> FaissIndex:
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def is_ivf(index: FaissIndex) -> bool:
    return isinstance(index, faiss.IndexIVFFlat)


def train_ivf(vectors: Vectors, labels: npt.NDArray[np.int64]) -> tuple[FaissIndex, int]:
    """A new IVF index over `vectors` (unit rows) with k-means centroids trained on a sample of them."""
    count, dim = vectors.shape
    nlist = nlist_for(count)
    sample = vectors
    if count > nlist * _SAMPLES_PER_LIST:
        picks = np.random.default_rng(0).choice(count, nlist * _SAMPLES_PER_LIST, replace=False)
        sample = vectors[np.sort(picks)]
    index = _empty_ivf(dim, nlist)
    _with_all_cores(lambda: index.train(sample))
    _with_all_cores(lambda: index.add_with_ids(vectors, labels))
    return index, count


def ivf_from_layout(vectors: Vectors, labels: npt.NDArray[np.int64], layout: IvfLayout) -> FaissIndex:
    """Rebuild a saved IVF index from its centroids and list assignments: no training, no assignment pass."""
    nlist, dim = layout.centroids.shape
    index = _empty_ivf(dim, nlist)
    index.quantizer.add(layout.centroids)
    index.is_trained = True
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    lists = np.ascontiguousarray(layout.lists, dtype=np.int64)
    index.add_core(len(labels), faiss.swig_ptr(vectors), faiss.swig_ptr(labels), faiss.swig_ptr(lists))
    return index


def ivf_contents(index: FaissIndex) -> tuple[Vectors, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Every vector, its label and its list number, list by list."""
    invlists, dim = index.invlists, index.d
    parts: list[tuple[Vectors, npt.NDArray[np.int64], int]] = []
    for list_no in range(index.nlist):
        size = invlists.list_size(list_no)
        if size == 0:
            continue
        ids = faiss.rev_swig_ptr(invlists.get_ids(list_no), size).copy()
        codes = faiss.rev_swig_ptr(invlists.get_codes(list_no), size * index.code_size)
        parts.append((codes.view(np.float32).reshape(size, dim).copy(), ids, list_no))
    if not parts:
        return np.zeros((0, dim), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64)
    vectors = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts]).astype(np.int64)
    lists = np.concatenate([np.full(len(p[1]), p[2], np.int64) for p in parts])
    return vectors, labels, lists


def centroids(index: FaissIndex) -> npt.NDArray[np.float32]:
    return np.asarray(index.quantizer.reconstruct_n(0, index.nlist), dtype=np.float32)


def plan(policy: AnnPolicy, index: FaissIndex, count: int, trained_on: int) -> str:
    """ "ivf" to (re)train an IVF index, "exact" to go back to exact search, "keep" to leave the index be."""
    if not is_ivf(index):
        return "ivf" if policy.wants_ivf(count) else "keep"
    if not policy.wants_ivf(2 * count):  # well below the threshold: exact is fast again, and exact
        return "exact"
    return "ivf" if count >= policy.regrow * max(trained_on, 1) else "keep"


def search_params(index: FaissIndex, policy: AnnPolicy, selector: Any) -> Any:
    """Parameters for one search; `selector` (an IDSelector or None) must outlive the search."""
    if is_ivf(index):
        ivf = faiss.SearchParametersIVF()
        ivf.nprobe = policy.nprobe(index.nlist)
        ivf.sel = selector
        return ivf
    if selector is None:
        return None
    params = faiss.SearchParameters()
    params.sel = selector
    return params


def removal_selector(index: FaissIndex, labels: npt.NDArray[np.int64]) -> Any:
    """IVF with a hash-table map removes by lookup but only from an IDSelectorArray (which must outlive the call);
    the exact index scans every row, where IDSelectorBatch's hashed membership test is the fast one."""
    if is_ivf(index):
        return faiss.IDSelectorArray(len(labels), faiss.swig_ptr(labels))
    return faiss.IDSelectorBatch(labels)


def exact_subset(index: FaissIndex, query: Vectors, labels: list[int], k: int) -> tuple[list[float], list[int]]:
    """The `k` best of `labels` by exact inner product: how an IVF index answers a filtered search over few rows."""
    rows = index.reconstruct_batch(np.asarray(labels, dtype=np.int64))
    scores = rows @ query[0]
    best = np.argsort(-scores, kind="stable")[:k]
    return scores[best].tolist(), [labels[i] for i in best.tolist()]


def _empty_ivf(dim: int, nlist: int) -> FaissIndex:
    # FAISS's Python wrapper keeps the quantizer alive as long as the index.
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
    # A hash table from label to slot, so deleting by label works (an array map would refuse).
    index.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]
    return index


def _with_all_cores(work: Any) -> None:
    """Searches pin their thread to one core; training and bulk adds should use every core."""
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    try:
        work()
    finally:
        faiss.omp_set_num_threads(1)
