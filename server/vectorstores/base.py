"""The vector store protocol every backend implements.

Vectors handed to a store are float32, L2-normalised, shape (n, dim). Every backend reports `score` as the
cosine similarity clamped to [0, 1] (higher is better), so `score_threshold` means the same for all of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True)
class StoredChunk:
    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    id: str
    text: str
    metadata: dict[str, Any]
    score: float


@dataclass(frozen=True)
class AnyOf:
    """A `where` value that matches when the metadata's string value is any of `values` (none: nothing matches).

    How the knowledge-base layer hands a store its allow-list of files (see server.knowledge_base.file_filter);
    each backend applies it inside its search, never on hits fetched first."""

    values: frozenset[str]

    def __init__(self, values: Iterable[str]) -> None:
        object.__setattr__(self, "values", frozenset(values))


def cosine_to_score(cosine: float) -> float:
    """The one conversion from a cosine similarity to our score."""
    return min(1.0, max(0.0, float(cosine)))


class VectorStore(Protocol):
    """One knowledge base's vectors for one embedding model."""

    @property
    def dim(self) -> int: ...

    def create(self) -> None:
        """Create the (empty) collection; a no-op when it exists."""

    def drop(self) -> None:
        """Remove the collection and everything in it."""

    def add(
        self,
        texts: Sequence[str],
        vectors: Vectors,
        metadatas: Sequence[Mapping[str, Any]],
        ids: Sequence[str] | None = None,
    ) -> list[str]:
        """Add chunks; returns their ids (generated when `ids` is None)."""

    def delete(self, ids: Sequence[str]) -> int:
        """Delete chunks by id; returns how many existed."""

    def search(
        self,
        vector: Vectors,
        top_k: int,
        score_threshold: float = 0.0,
        where: Mapping[str, Any] | None = None,
    ) -> list[Hit]:
        """Nearest chunks, best first; `where` keeps chunks whose metadata has those key/values (a value may be
        an `AnyOf`: one of several strings)."""

    def get(self, ids: Sequence[str]) -> list[StoredChunk]:
        """Chunks by id, in the order asked; unknown ids are skipped."""

    def vectors(self, ids: Sequence[str]) -> dict[str, Vectors]:
        """The stored vector of each known id (shape (dim,), float32); unknown ids are left out. For exports."""

    def count(self) -> int: ...

    def flush(self) -> None:
        """Persist pending writes."""

    def close(self) -> None:
        """Flush and release resources; the store may be reopened later."""
