"""Concurrent query embeddings batched into one call (server/embeddings/batcher.py, EmbeddingPool.embed_query)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from server.embeddings import EmbeddingPool
from server.embeddings.base import Vectors
from server.embeddings.batcher import QueryBatcher
from server.embeddings.config import EmbedModelConfig
from server.embeddings.hash import HashEmbedder


class Recording:
    """A slow batch function (every call takes `delay` seconds) recording the size of each call."""

    def __init__(self, delay: float = 0.05, fail: bool = False) -> None:
        self.inner = HashEmbedder("h", dim=16)
        self.delay, self.fail = delay, fail
        self.sizes: list[int] = []
        self._lock = threading.Lock()

    def __call__(self, texts: Sequence[str]) -> Vectors:
        with self._lock:
            self.sizes.append(len(texts))
        time.sleep(self.delay)
        if self.fail:
            raise ValueError("the model broke")
        return self.inner.embed_queries(texts)


def _concurrently(batcher: QueryBatcher, texts: list[str]) -> list[Vectors]:
    with ThreadPoolExecutor(len(texts)) as pool:
        return list(pool.map(batcher.embed, texts))


def test_concurrent_queries_share_calls_and_get_their_own_vectors() -> None:
    model = Recording()
    texts = [f"问题 {i}" for i in range(40)]
    got = _concurrently(QueryBatcher(model, max_batch=16), texts)
    expected = HashEmbedder("h", dim=16)
    for text, vector in zip(texts, got, strict=True):
        assert np.allclose(vector, expected.embed_query(text))
    assert sum(model.sizes) == 40 and max(model.sizes) <= 16 and len(model.sizes) < 10, model.sizes


def test_a_lone_query_runs_at_once() -> None:
    model = Recording(delay=0.0)
    started = time.perf_counter()
    QueryBatcher(model, max_batch=32).embed("一个问题")
    assert model.sizes == [1] and time.perf_counter() - started < 0.05


def test_an_error_reaches_every_waiting_caller_and_the_batcher_recovers() -> None:
    model = Recording(fail=True)
    batcher = QueryBatcher(model, max_batch=8)
    with ThreadPoolExecutor(12) as pool:
        futures = [pool.submit(batcher.embed, f"q{i}") for i in range(12)]
        errors = [future.exception(timeout=10) for future in futures]
    assert all(isinstance(error, ValueError) for error in errors)
    model.fail = False
    assert batcher.embed("again").shape == (16,)


def test_a_model_returning_the_wrong_count_fails_the_batch_not_the_waiters() -> None:
    batcher = QueryBatcher(lambda texts: np.zeros((1, 4), np.float32), max_batch=8)
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(batcher.embed, f"q{i}") for i in range(6)]
        errors = [future.exception(timeout=10) for future in futures]
    assert all(error is None or "vectors for" in str(error) for error in errors)
    with pytest.raises(ValueError):
        QueryBatcher(lambda texts: np.zeros((0, 4), np.float32), max_batch=0)


def test_the_pool_batches_behind_its_cache() -> None:
    configs = {"h": EmbedModelConfig(backend="hash", dim=16)}
    pool = EmbeddingPool(configs, query_batch=16)
    one_at_a_time = EmbeddingPool(configs, query_batch=1, query_cache_size=0)
    texts = [f"text {i}" for i in range(20)]
    with ThreadPoolExecutor(20) as threads:
        batched = list(threads.map(lambda text: pool.embed_query("h", text), texts))
    for text, vector in zip(texts, batched, strict=True):
        assert np.allclose(vector, one_at_a_time.embed_query("h", text))
    assert np.allclose(pool.embed_query("h", "text 3"), batched[3])  # now from the cache


def test_parallel_leaders_compute_at_the_same_time_but_no_more() -> None:
    running, most = 0, 0
    lock = threading.Lock()
    inner = HashEmbedder("h", dim=8)

    def slow(texts: Sequence[str]) -> Vectors:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return inner.embed_queries(texts)

    got = _concurrently(QueryBatcher(slow, max_batch=4, parallel=2), [f"q{i}" for i in range(24)])
    assert most == 2 and len(got) == 24
    assert all(np.allclose(vector, inner.embed_query(f"q{i}")) for i, vector in enumerate(got))
