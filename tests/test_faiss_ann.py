"""The FAISS store's approximate (IVF) index: when it switches, that it still answers right, and that it
survives a restart without retraining."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from server.vectorstores import faiss_index as ann
from server.vectorstores.base import Vectors, VectorStore
from server.vectorstores.faiss_file import read_store_file
from server.vectorstores.faiss_store import FaissStore
from tests.conformance.store_suite import DIM, StoreConformance

EAGER = ann.AnnPolicy(threshold=1)  # IVF from the first flush on


class _FlushingFaissStore(FaissStore):
    """Flushes after every add, so the conformance suite runs against the IVF index."""

    def add(
        self,
        texts: Sequence[str],
        vectors: Vectors,
        metadatas: Sequence[Mapping[str, Any]],
        ids: Sequence[str] | None = None,
    ) -> list[str]:
        added = super().add(texts, vectors, metadatas, ids)
        self.flush()
        return added


class TestFaissIvfConformance(StoreConformance):
    def make_store(self, tmp_path: Path, dim: int) -> VectorStore:
        return _FlushingFaissStore(tmp_path / "ivf", dim, kb_name="samples", policy=EAGER)

    def reopen(self, store: VectorStore, tmp_path: Path, dim: int) -> VectorStore:
        store.close()
        return _FlushingFaissStore(tmp_path / "ivf", dim, kb_name="samples", policy=EAGER)


def _created(store: FaissStore) -> FaissStore:
    store.create()
    return store


def clustered(n: int, dim: int = DIM, clusters: int = 40, seed: int = 0) -> Vectors:
    """Unit vectors around a few centres: like embeddings, and unlike uniform noise, they have neighbours."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    rows = centres[rng.integers(0, clusters, n)] + 0.35 * rng.normal(size=(n, dim))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _fill(store: FaissStore, vectors: Vectors) -> list[str]:
    n = len(vectors)
    metadatas = [{"source": f"f{i % 50}.md"} for i in range(n)]
    return store.add([f"chunk {i}" for i in range(n)], vectors, metadatas, [f"c{i}" for i in range(n)])


def _top(store: FaissStore, queries: Vectors, k: int = 10) -> list[list[str]]:
    return [[hit.id for hit in store.search(q, k)] for q in queries]


def test_the_store_switches_to_ivf_past_the_threshold_on_flush(tmp_path: Path) -> None:
    policy = ann.AnnPolicy(threshold=4000)
    store = _created(FaissStore(tmp_path / "s", DIM, policy=policy))
    _fill(store, clustered(3000))
    store.flush()
    assert not store.approximate
    store.add(["more"] * 1000, clustered(1000, seed=1), [{}] * 1000, [f"m{i}" for i in range(1000)])
    assert not store.approximate  # adds never train: only flush does
    store.flush()
    assert store.approximate and store.count() == 4000


def test_ivf_recall_of_exact_search_is_at_least_095(tmp_path: Path) -> None:
    data, queries = clustered(6000), clustered(50, seed=7)
    exact = _created(FaissStore(tmp_path / "exact", DIM, policy=ann.AnnPolicy(threshold=0)))
    ivf = _created(FaissStore(tmp_path / "ivf", DIM, policy=ann.AnnPolicy(threshold=1000)))
    for store in (exact, ivf):
        _fill(store, data)
        store.flush()
    assert ivf.approximate and not exact.approximate
    truth, found = _top(exact, queries), _top(ivf, queries)
    recall = np.mean([len(set(t) & set(f)) / len(t) for t, f in zip(truth, found, strict=True)])
    assert recall >= 0.95


def test_a_reopened_ivf_store_needs_no_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _created(FaissStore(tmp_path / "s", DIM, policy=ann.AnnPolicy(threshold=1000)))
    _fill(store, clustered(3000))
    store.close()
    assert read_store_file(store.path).layout is not None
    queries = clustered(5, seed=3)
    before = _top(store, queries)

    def no_training(*args: Any) -> Any:
        raise AssertionError("a reopen must not retrain")

    monkeypatch.setattr(ann, "train_ivf", no_training)
    reopened = FaissStore(tmp_path / "s", DIM, policy=ann.AnnPolicy(threshold=1000))
    assert reopened.approximate and _top(reopened, queries) == before


def test_deletes_and_filters_work_on_the_ivf_index(tmp_path: Path) -> None:
    store = _created(FaissStore(tmp_path / "s", DIM, policy=ann.AnnPolicy(threshold=1000)))
    data = clustered(3000)
    _fill(store, data)
    store.flush()
    assert store.delete(["c0", "c1", "missing"]) == 2
    assert store.count() == 2998 and store.get(["c0"]) == []
    assert "c0" not in [hit.id for hit in store.search(data[0], 5)]
    hits = store.search(data[7], 3, where={"source": "f7.md"})
    assert hits[0].id == "c7" and all(hit.metadata["source"] == "f7.md" for hit in hits)


def test_shrinking_far_below_the_threshold_goes_back_to_exact(tmp_path: Path) -> None:
    store = _created(FaissStore(tmp_path / "s", DIM, policy=ann.AnnPolicy(threshold=2000)))
    ids = _fill(store, clustered(2500))
    store.flush()
    assert store.approximate
    store.delete(ids[:1600])
    store.flush()
    assert not store.approximate and store.count() == 900


def test_an_existing_exact_file_past_the_threshold_is_indexed_on_open(tmp_path: Path) -> None:
    store = _created(FaissStore(tmp_path / "s", DIM, policy=ann.AnnPolicy(threshold=0)))
    _fill(store, clustered(3000))
    store.close()
    reopened = FaissStore(tmp_path / "s", DIM, policy=ann.AnnPolicy(threshold=2000))
    assert reopened.approximate and reopened.count() == 3000


def test_nlist_and_nprobe_follow_the_size() -> None:
    assert ann.nlist_for(40) == 1 and ann.nlist_for(50_000) == 894 and ann.nlist_for(1_000_000) == 4000
    policy = ann.AnnPolicy()
    assert policy.nprobe(1) == 1 and policy.nprobe(100) == 16 and policy.nprobe(894) == 56
    assert policy.nprobe(1264) == 79 and policy.nprobe(4000) == 96


def test_settings_reach_the_store_through_the_factory(tmp_path: Path) -> None:
    from configs.settings import Settings
    from server.vectorstores.registry import StoreSpec, create_store

    settings = Settings(data_dir=tmp_path, vector_stores={"faiss": {"ann_threshold": 1234, "ann_probe_fraction": 0.5}})
    spec = StoreSpec("faiss", 1, "kb", "hash", DIM, tmp_path / "vs")
    store = create_store(spec, settings.store_options())
    assert isinstance(store, FaissStore)
    assert store.policy == ann.AnnPolicy(threshold=1234, probe_fraction=0.5, max_probe=96)
