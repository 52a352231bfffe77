"""Local sentence-transformers models, loaded from a directory (never from a model hub)."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from server.embeddings._vectors import batches, empty
from server.embeddings.base import Vectors
from server.errors import EmbeddingUnavailable


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


class SentenceTransformerEmbedder:
    """A sentence-transformers model from `path` or from the installed `package`; loads on first use.

    Prefixes are prepended as given (e.g. "query: " for e5 models, a bge instruction for queries), vectors
    are normalised by the model. Calls hold a lock: fast tokenizers fail when shared between threads.
    """

    def __init__(
        self,
        name: str,
        *,
        path: str | Path | None = None,
        package: str | None = None,
        device: str = "cpu",
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
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._model: Any = None
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        with self._lock:
            self._load()
            assert self._dim is not None
            return self._dim

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return empty(self.dim)
        prefixed = [self.passage_prefix + text for text in texts]
        return np.concatenate([self._encode(batch) for batch in batches(prefixed, self.batch_size)])

    def embed_query(self, text: str) -> Vectors:
        return self._encode([self.query_prefix + text])[0]

    def _encode(self, texts: list[str]) -> Vectors:
        with self._lock:
            vectors = self._load().encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def model_dir(self) -> Path:
        """The model directory this embedder loads (imports `package` when no `path` is set)."""
        if self.path is not None:
            return self.path
        assert self.package is not None
        return package_model_dir(self.package)

    def _load(self) -> Any:
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
        try:
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(str(directory), device=self.device, local_files_only=True)
        except Exception as error:  # a broken model folder fails in many library-specific ways
            raise EmbeddingUnavailable(
                f"embedding model {self.name!r}: cannot load a sentence-transformers model from {directory} "
                f"({type(error).__name__}: {error}); check the folder holds a complete model"
            ) from error
        dim = model.get_embedding_dimension()
        self._dim = int(dim) if dim else int(model.encode(["probe"], convert_to_numpy=True).shape[1])
        self._model = model
        return model
