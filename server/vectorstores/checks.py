"""Input checks every store backend shares, so they all refuse the same bad input with the same InvalidInput."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from server.errors import InvalidInput
from server.vectorstores.base import AnyOf, Vectors

_MISSING = object()  # equal to nothing, so a key absent from the metadata never matches
MAX_METADATA_DEPTH = 16
MAX_METADATA_BYTES = 65_536  # also Milvus' limit for one JSON field


class Batch(NamedTuple):
    """One checked `add`: unit-length float32 rows, string texts, JSON-plain metadata copies, unique ids."""

    vectors: Vectors
    texts: list[str]
    metadatas: list[dict[str, Any]]
    ids: list[str]


def checked_batch(
    texts: Sequence[str],
    vectors: Any,
    metadatas: Sequence[Mapping[str, Any]],
    ids: Sequence[str] | None,
    dim: int,
) -> Batch:
    """Validates an `add`; ids are generated (uuid4 hex) when `ids` is None."""
    matrix = unit_rows(vectors, dim, "vectors")
    n = matrix.shape[0]
    if len(texts) != n or len(metadatas) != n:
        raise InvalidInput(f"got {n} vectors, {len(texts)} texts and {len(metadatas)} metadatas")
    return Batch(matrix, [str(text) for text in texts], plain_metadata(metadatas), checked_ids(ids, n))


def query_row(vector: Any, dim: int, top_k: int) -> Vectors:
    """A (1, dim) unit query from shape (dim,) or (1, dim); also checks `top_k`."""
    if top_k <= 0:
        raise InvalidInput(f"top_k must be at least 1, got {top_k}")
    array = np.asarray(vector)
    return unit_rows(array.reshape(1, -1) if array.ndim == 1 else array, dim, "query vector")


def unit_rows(vectors: Any, dim: int, what: str) -> Vectors:
    """A C-contiguous float32 copy with unit-length rows; rejects wrong shapes, NaN and zero vectors."""
    try:
        matrix = np.array(vectors, dtype=np.float32, order="C", copy=True)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{what} must be a float array: {exc}") from exc
    if matrix.ndim != 2 or matrix.shape[1] != dim:
        raise InvalidInput(f"{what} must have shape (n, {dim}), got {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise InvalidInput(f"{what} contain NaN or infinite values")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    if (norms == 0).any():
        raise InvalidInput(f"{what} contain an all-zero vector, which has no direction")
    matrix /= norms
    return matrix


def checked_ids(ids: Sequence[str] | None, n: int) -> list[str]:
    if ids is None:
        return [uuid.uuid4().hex for _ in range(n)]
    checked = list(ids)
    if len(checked) != n:
        raise InvalidInput(f"got {len(checked)} ids for {n} vectors")
    if not all(isinstance(i, str) and i for i in checked):
        raise InvalidInput("ids must be non-empty strings")
    if len(set(checked)) != n:
        raise InvalidInput("ids within one add must be unique")
    return checked


def plain_metadata(metadatas: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Deep, JSON-plain copies: what a search returns before a restart is what it returns after one.

    A chunk's metadata may nest at most MAX_METADATA_DEPTH levels and take at most MAX_METADATA_BYTES as JSON, so
    no stored chunk can make a later search fail to answer (a deeply nested value breaks JSON encoders)."""
    for metadata in metadatas:
        _check_depth(metadata, 1)
    try:
        rows = [json.dumps(dict(m), ensure_ascii=False) for m in metadatas]
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"metadata must be JSON-serialisable: {exc}") from exc
    big = next((row for row in rows if len(row.encode()) > MAX_METADATA_BYTES), None)
    if big is not None:
        raise InvalidInput(
            f"a chunk's metadata takes {len(big.encode()):,} bytes as JSON, more than {MAX_METADATA_BYTES:,}; "
            "keep metadata to short fields"
        )
    return [json.loads(row) for row in rows]


def _check_depth(value: Any, depth: int) -> None:
    if depth > MAX_METADATA_DEPTH:
        raise InvalidInput(f"metadata nests deeper than {MAX_METADATA_DEPTH} levels; flatten it")
    children = value.values() if isinstance(value, Mapping) else value if isinstance(value, list | tuple) else ()
    for child in children:
        if isinstance(child, Mapping | list | tuple):
            _check_depth(child, depth + 1)


def metadata_matches(metadata: Mapping[str, Any], where: Mapping[str, Any] | None) -> bool:
    """Whether `metadata` has every key/value of `where` (an `AnyOf` value: one of its strings)."""
    if not where:
        return True
    for key, wanted in where.items():
        value = metadata.get(key, _MISSING)
        if isinstance(wanted, AnyOf):
            if not isinstance(value, str) or value not in wanted.values:
                return False
        elif value != wanted:
            return False
    return True


def matches_nothing(where: Mapping[str, Any] | None) -> bool:
    """Whether `where` holds an empty `AnyOf`, so a search can answer [] without asking its backend."""
    return bool(where) and any(isinstance(v, AnyOf) and not v.values for v in (where or {}).values())


def split_where(where: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, AnyOf]]:
    """`where` as its plain equalities and its `AnyOf` memberships, for backends that write them differently."""
    equal = {k: v for k, v in (where or {}).items() if not isinstance(v, AnyOf)}
    member = {k: v for k, v in (where or {}).items() if isinstance(v, AnyOf)}
    return equal, member
