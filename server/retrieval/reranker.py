"""An optional cross-encoder that reorders search candidates (e.g. bge-reranker from a local folder)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from server.errors import RerankerUnavailable


class CrossEncoderReranker:
    """A sentence-transformers `CrossEncoder` loaded once, on first use, from a local directory.

    Scores are the model's sigmoid output, in [0, 1] for a one-label model such as bge-reranker.
    """

    def __init__(self, path: Path, *, device: str = "cpu", batch_size: int = 16, max_length: int = 512) -> None:
        self.path = path
        self.device = device
        self.batch_size = batch_size
        self.max_length = max_length
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                if not self.path.is_dir():
                    raise RerankerUnavailable(
                        f"reranker folder {self.path} does not exist; set reranker.path to a local cross-encoder "
                        "directory (e.g. a downloaded BAAI/bge-reranker-base) or set reranker.enabled: false"
                    )
                from sentence_transformers import CrossEncoder

                self._model = CrossEncoder(
                    str(self.path), device=self.device, max_length=self.max_length, local_files_only=True
                )
            return self._model

    def scores(self, query: str, texts: Sequence[str]) -> list[float]:
        """Relevance of each text to `query`, in [0, 1], in the order given."""
        if not texts:
            return []
        model = self._load()
        raw = model.predict([(query, text) for text in texts], batch_size=self.batch_size, show_progress_bar=False)
        return [min(1.0, max(0.0, float(value))) for value in raw]
