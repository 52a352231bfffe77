"""Local sentence-transformers models, loaded from a directory (never from a model hub)."""

from __future__ import annotations

import importlib
import importlib.util
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from server.embeddings._vectors import batches, empty
from server.embeddings.base import Vectors
from server.embeddings.config import EmbedRuntime
from server.errors import EmbeddingUnavailable

ONNX_PACKAGES = ("onnxruntime", "onnx", "onnxscript")


class SentenceEncoder(Protocol):
    """A loaded model, whatever runs it: unit vectors for a list of texts."""

    dim: int

    def encode(self, texts: Sequence[str]) -> Vectors: ...


def resolve_device(device: str, name: str = "") -> str:
    """`auto` is cuda when torch sees a GPU, else cpu; an explicit cuda device must exist."""
    if device != "auto" and not device.startswith("cuda"):
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda" if device == "auto" else device
    if device == "auto":
        return "cpu"
    raise EmbeddingUnavailable(
        f"embedding model {name!r}: device {device!r} is set but torch sees no CUDA GPU; set device: auto or cpu"
    )


def package_model_dir(package: str) -> Path:
    """An installed model package's model folder: `get_model_path()`, else `<pkg>/model`, else `<pkg>`."""
    try:
        module = importlib.import_module(package)
    except ImportError as error:
        raise EmbeddingUnavailable(
            f"model package {package!r} is not installed ({error}); install it or set `path` instead"
        ) from error
    get_model_path = getattr(module, "get_model_path", None)
    if callable(get_model_path):
        return Path(get_model_path())
    if module.__file__ is None:
        raise EmbeddingUnavailable(f"model package {package!r} has no folder; set `path` to a model folder")
    folder = Path(module.__file__).resolve().parent
    return folder / "model" if (folder / "model").is_dir() else folder


class TorchEncoder:
    """A SentenceTransformer (PyTorch) behind the `SentenceEncoder` interface."""

    def __init__(self, model: Any, batch_size: int) -> None:
        self.model = model
        self.batch_size = batch_size
        dim = model.get_embedding_dimension()
        self.dim = int(dim) if dim else int(model.encode(["probe"], convert_to_numpy=True).shape[1])

    def encode(self, texts: Sequence[str]) -> Vectors:
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


class SentenceTransformerEmbedder:
    """A sentence-transformers model from `path` or from the installed `package`; loads on first use.

    Prefixes are prepended as given (e.g. "query: " for e5 models, a bge instruction for queries), vectors
    are normalised. `runtime` picks PyTorch or ONNX Runtime (fp32 or int8); the ONNX file is exported
    from the model's own folder on first use and cached under `onnx_dir`. Calls hold a lock: fast tokenizers
    fail when shared between threads.
    """

    def __init__(
        self,
        name: str,
        *,
        path: str | Path | None = None,
        package: str | None = None,
        device: str = "auto",
        runtime: EmbedRuntime = "torch",
        threads: int | None = None,
        onnx_dir: str | Path | None = None,
        query_prefix: str = "",
        passage_prefix: str = "",
        batch_size: int = 32,
    ) -> None:
        if path is None and package is None:
            raise ValueError("a sentence-transformers model needs `path` or `package`")
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.name = name
        self.path = Path(path) if path is not None else None
        self.package = package
        self.device = device
        self.runtime = runtime
        self.threads = threads
        self.onnx_dir = Path(onnx_dir) if onnx_dir is not None else None
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._model: SentenceEncoder | None = None

    @property
    def dim(self) -> int:
        # Once loaded, the model is never replaced: reading it needs no lock, so a search asking for the KB's
        # dimension does not wait behind a document batch that holds the lock for seconds.
        model = self._model
        if model is not None:
            return model.dim
        with self._lock:
            return self._load().dim

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return empty(self.dim)
        prefixed = [self.passage_prefix + text for text in texts]
        return np.concatenate([self._encode(batch) for batch in batches(prefixed, self.batch_size)])

    def embed_query(self, text: str) -> Vectors:
        return self._encode([self.query_prefix + text])[0]

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return empty(self.dim)
        return self._encode([self.query_prefix + text for text in texts])

    def _encode(self, texts: list[str]) -> Vectors:
        with self._lock:
            return self._load().encode(texts)

    def model_dir(self) -> Path:
        """The model directory this embedder loads (imports `package` when no `path` is set)."""
        if self.path is not None:
            return self.path
        assert self.package is not None
        return package_model_dir(self.package)

    def _load(self) -> SentenceEncoder:
        """The model, loaded on first call; the caller holds `self._lock`."""
        if self._model is not None:
            return self._model
        directory = self.model_dir()
        if not directory.is_dir():
            source = f"package {self.package!r}" if self.path is None else "`path`"
            raise EmbeddingUnavailable(
                f"embedding model {self.name!r}: model directory {directory} (from {source}) does not exist; "
                "copy the model files there or point `path` at a local sentence-transformers model directory"
            )
        device = resolve_device(self.device, self.name)
        if self.runtime == "torch":
            self._model = self._load_torch(directory, device)
        else:
            self._model = self._load_onnx(directory, device, quantized=self.runtime == "onnx-int8")
        return self._model

    def _load_torch(self, directory: Path, device: str) -> SentenceEncoder:
        try:
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(str(directory), device=device, local_files_only=True)
            return TorchEncoder(model, self.batch_size)
        except Exception as error:  # a broken model folder fails in many library-specific ways
            raise EmbeddingUnavailable(
                f"embedding model {self.name!r}: cannot load a sentence-transformers model from {directory} "
                f"({type(error).__name__}: {error}); check the folder holds a complete model"
            ) from error

    def _load_onnx(self, directory: Path, device: str, *, quantized: bool) -> SentenceEncoder:
        missing = [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]
        if missing:
            raise EmbeddingUnavailable(f"the onnx runtimes need {', '.join(missing)}: pip install {' '.join(missing)}")
        from server.embeddings.onnx_encoder import OnnxSentenceEncoder
        from server.embeddings.onnx_export import default_cache_dir, onnx_model

        providers = onnx_providers(device)
        onnx_file = onnx_model(directory, self.onnx_dir or default_cache_dir(), quantized=quantized)
        try:
            return OnnxSentenceEncoder(
                directory, onnx_file, providers=providers, threads=self.threads, batch_size=self.batch_size
            )
        except EmbeddingUnavailable:
            raise
        except Exception as error:  # onnxruntime and tokenizers raise their own types
            raise EmbeddingUnavailable(
                f"cannot run {onnx_file} ({type(error).__name__}: {error}); delete it to export it again"
            ) from error


def onnx_providers(device: str) -> list[Any]:
    """ONNX Runtime execution providers for a device; a GPU needs the onnxruntime-gpu package."""
    if device == "cpu":
        return ["CPUExecutionProvider"]
    import onnxruntime

    if device.startswith("cuda") and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        index = int(device.split(":", 1)[1]) if ":" in device else 0
        return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    raise EmbeddingUnavailable(
        f"ONNX Runtime cannot use device {device!r} here (install onnxruntime-gpu for CUDA); "
        "set `runtime: torch` or `device: cpu`"
    )
