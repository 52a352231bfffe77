"""Small helpers shared by the embedding backends."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from server.embeddings.base import Vectors


def empty(dim: int) -> Vectors:
    """The result of embedding no texts: shape (0, dim)."""
    return np.zeros((0, dim), dtype=np.float32)


def batches(texts: Sequence[str], size: int) -> Iterator[list[str]]:
    """Consecutive slices of at most `size` texts."""
    for start in range(0, len(texts), size):
        yield list(texts[start : start + size])


def normalise_rows(matrix: Vectors) -> Vectors:
    """Rows scaled to unit L2 norm; all-zero rows stay zero (callers decide what that means)."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms > 0, norms, 1.0)).astype(np.float32, copy=False)
