"""The store factory (type → backend, loud failures) and the LRU cache of open stores."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from server.errors import ConfigError, InvalidInput, StoreUnavailable, UnknownVectorStore
from server.vectorstores.base import VectorStore
from server.vectorstores.cache import StoreCache
from server.vectorstores.faiss_store import FaissStore
from server.vectorstores.registry import STORES, MilvusOptions, StoreSpec, create_store


def _spec(tmp_path: Path, kb: str = "kb", model: str = "m", vs_type: str = "faiss", dim: int = 8) -> StoreSpec:
    return StoreSpec(vs_type, 1, kb, model, dim, tmp_path / kb / "vector_store" / model)


# -- factory -------------------------------------------------------------------------------------------------


def test_faiss_is_supported_and_opens(tmp_path: Path) -> None:
    assert "faiss" in STORES.kb_types() and "memory" not in STORES.kb_types()
    store = create_store(_spec(tmp_path))
    assert isinstance(store, FaissStore)
    assert store.dim == 8
    store.create()
    assert (tmp_path / "kb" / "vector_store" / "m").is_dir()


def test_an_unknown_type_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(UnknownVectorStore, match=r"'chroma'.*faiss"):
        create_store(_spec(tmp_path, vs_type="chroma"))


def test_a_missing_package_names_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "server.vectorstores.faiss_store", raising=False)
    monkeypatch.setitem(sys.modules, "faiss", None)  # makes `import faiss` fail as if not installed
    with pytest.raises(StoreUnavailable, match="pip install faiss-cpu"):
        create_store(_spec(tmp_path))


def test_a_non_positive_dimension_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        _spec(tmp_path, dim=0)


# -- cache ---------------------------------------------------------------------------------------------------


class FakeStore:
    """Records what the cache does to it."""

    def __init__(self, spec: StoreSpec) -> None:
        self.spec = spec
        self.dim = spec.dim
        self.closed = 0
        self.flushed = 0

    def flush(self) -> None:
        self.flushed += 1

    def close(self) -> None:
        self.closed += 1


class FakeOpener:
    def __init__(self) -> None:
        self.opened: list[tuple[str, str]] = []
        self.options: list[Mapping[str, Any] | None] = []

    def __call__(self, spec: StoreSpec, options: Mapping[str, Any] | None) -> VectorStore:
        self.opened.append((spec.kb_name, spec.embed_model))
        self.options.append(options)
        store: Any = FakeStore(spec)
        return store  # the cache only calls flush/close; the fake stands in for the whole protocol


def _fake(store: VectorStore) -> FakeStore:
    assert isinstance(store, FakeStore)
    return store


def test_a_hit_returns_the_same_store(tmp_path: Path) -> None:
    opener = FakeOpener()
    options = {"milvus": MilvusOptions(uri="x")}
    cache = StoreCache(options=options, opener=opener)
    assert cache.get(_spec(tmp_path)) is cache.get(_spec(tmp_path))
    assert opener.opened == [("kb", "m")]
    assert opener.options == [options]


def test_the_least_recently_used_store_is_closed(tmp_path: Path) -> None:
    cache = StoreCache(capacity=2, opener=FakeOpener())
    a = _fake(cache.get(_spec(tmp_path, "a")))
    b = _fake(cache.get(_spec(tmp_path, "b")))
    cache.get(_spec(tmp_path, "a"))  # a is now the most recent
    cache.get(_spec(tmp_path, "c"))
    assert (a.closed, b.closed) == (0, 1)
    assert len(cache) == 2


def test_a_changed_spec_reopens(tmp_path: Path) -> None:
    opener = FakeOpener()
    cache = StoreCache(opener=opener)
    old = _fake(cache.get(_spec(tmp_path, dim=8)))
    new = _fake(cache.get(_spec(tmp_path, dim=16)))
    assert old is not new
    assert (old.closed, new.dim, len(cache)) == (1, 16, 1)


def test_evict_one_model_or_all_models_of_a_kb(tmp_path: Path) -> None:
    cache = StoreCache(opener=FakeOpener())
    stores = {key: _fake(cache.get(_spec(tmp_path, *key))) for key in [("a", "m1"), ("a", "m2"), ("b", "m1")]}
    assert cache.evict("a", "m1") == 1
    assert stores["a", "m1"].closed == 1
    assert cache.evict("a") == 1
    assert stores["a", "m2"].closed == 1
    assert stores["b", "m1"].closed == 0
    assert cache.evict("nothing") == 0
    assert len(cache) == 1


def test_flush_all_and_close_all(tmp_path: Path) -> None:
    cache = StoreCache(opener=FakeOpener())
    stores = [_fake(cache.get(_spec(tmp_path, name))) for name in "abc"]
    cache.flush_all()
    assert [store.flushed for store in stores] == [1, 1, 1]
    cache.close_all()
    assert [store.closed for store in stores] == [1, 1, 1]
    assert len(cache) == 0


def test_close_all_closes_the_others_when_one_fails(tmp_path: Path) -> None:
    cache = StoreCache(opener=FakeOpener())
    stores = [_fake(cache.get(_spec(tmp_path, name))) for name in "abc"]

    def broken_close() -> None:
        raise StoreUnavailable("disk full")

    stores[0].close = broken_close  # type: ignore[method-assign]
    with pytest.raises(StoreUnavailable, match="disk full"):
        cache.close_all()
    assert [store.closed for store in stores[1:]] == [1, 1]
    assert len(cache) == 0
    cache.get(_spec(tmp_path, "a"))  # the failed key is not left busy


def test_a_failed_open_is_not_cached(tmp_path: Path) -> None:
    cache = StoreCache()
    with pytest.raises(UnknownVectorStore):
        cache.get(_spec(tmp_path, vs_type="nope"))
    assert len(cache) == 0
    assert isinstance(cache.get(_spec(tmp_path)), FaissStore)


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ConfigError):
        StoreCache(capacity=0)


def test_a_slow_open_does_not_block_other_keys(tmp_path: Path) -> None:
    release = threading.Event()
    opener = FakeOpener()

    def slow_opener(spec: StoreSpec, options: Mapping[str, Any] | None) -> VectorStore:
        if spec.kb_name == "slow":
            assert release.wait(timeout=10)
        return opener(spec, options)

    cache = StoreCache(opener=slow_opener)
    fast = cache.get(_spec(tmp_path, "fast"))
    with ThreadPoolExecutor(max_workers=3) as pool:
        slow_gets = [pool.submit(cache.get, _spec(tmp_path, "slow")) for _ in range(2)]
        time.sleep(0.05)
        started = time.perf_counter()
        assert cache.get(_spec(tmp_path, "fast")) is fast
        assert cache.get(_spec(tmp_path, "other")) is not None
        assert time.perf_counter() - started < 1.0
        release.set()
        first, second = (future.result(timeout=10) for future in slow_gets)
    assert first is second
    assert opener.opened.count(("slow", "m")) == 1  # two concurrent misses opened it once


def test_a_store_being_closed_is_not_reopened_until_it_is_flushed(tmp_path: Path) -> None:
    """Eviction flushes outside the lock; a get of that key must wait, or it would read a stale file."""
    closing, finish = threading.Event(), threading.Event()
    opener = FakeOpener()
    cache = StoreCache(capacity=1, opener=opener)
    first = _fake(cache.get(_spec(tmp_path, "a")))

    def slow_close() -> None:
        closing.set()
        assert finish.wait(timeout=10)
        first.closed += 1

    first.close = slow_close  # type: ignore[method-assign]
    with ThreadPoolExecutor(max_workers=2) as pool:
        evicting = pool.submit(cache.get, _spec(tmp_path, "b"))
        assert closing.wait(timeout=10)
        reopening = pool.submit(cache.get, _spec(tmp_path, "a"))
        time.sleep(0.05)
        assert not reopening.done()
        finish.set()
        evicting.result(timeout=10)
        assert reopening.result(timeout=10) is not first
    assert first.closed == 1
    assert opener.opened.count(("a", "m")) == 2


def test_the_cache_closes_real_faiss_stores_with_a_flush(tmp_path: Path) -> None:
    cache = StoreCache(capacity=1)
    store = cache.get(_spec(tmp_path, "a"))
    store.create()
    store.add(["x"], np.ones((1, 8), dtype=np.float32), [{}], ids=["x"])
    cache.get(_spec(tmp_path, "b"))  # evicts a, which flushes it
    assert cache.get(_spec(tmp_path, "a")).get(["x"])[0].text == "x"
