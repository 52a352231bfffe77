"""The embedding interface: documents and queries may be embedded differently (e5 prefixes, bge instructions)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Returns float32, L2-normalised vectors. Heavy models load lazily on first use."""

    name: str

    @property
    def dim(self) -> int: ...

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        """Shape (len(texts), dim)."""

    def embed_query(self, text: str) -> Vectors:
        """Shape (dim,)."""

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        """Shape (len(texts), dim): several queries in one call, each as `embed_query` makes it (concurrent
        searches are batched into one such call: server/embeddings/batcher.py)."""
