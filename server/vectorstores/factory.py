"""Opens the vector store a knowledge base is configured with.

Backends are imported only when first asked for, so a missing optional package (pymilvus, psycopg) matters
only to the knowledge bases that use it. Each backend module exposes
`open_store(spec: StoreSpec, options: Mapping[str, Any]) -> VectorStore`; adding one is a line in `_BACKENDS`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

from server.errors import InvalidInput, StoreUnavailable, UnknownVectorStore
from server.vectorstores.base import VectorStore


@dataclass(frozen=True)
class StoreSpec:
    vs_type: str  # "faiss", "milvus", "pg"
    kb_id: int
    kb_name: str
    embed_model: str
    dim: int
    directory: Path  # <data_dir>/<kb>/vector_store/<embed_model>/ (used by faiss)
    collection: str = ""  # an ASCII name from the registry for server backends (KB names may be Chinese)

    def __post_init__(self) -> None:
        if self.dim <= 0:
            raise InvalidInput(f"vector dimension must be positive, got {self.dim} ({self.embed_model})")


@dataclass(frozen=True)
class _Backend:
    module: str  # defines open_store(spec, options)
    package: str  # what to pip install when the module's imports fail


_BACKENDS: Mapping[str, _Backend] = MappingProxyType(
    {
        "faiss": _Backend("server.vectorstores.faiss_store", "faiss-cpu"),
        "milvus": _Backend("server.vectorstores.milvus_store", "pymilvus"),
        "pg": _Backend("server.vectorstores.pg_store", "psycopg[binary] and pgvector"),
    }
)
SUPPORTED_VS_TYPES: tuple[str, ...] = tuple(_BACKENDS)

_Opener = Callable[[StoreSpec, Mapping[str, Any]], VectorStore]


def create_store(spec: StoreSpec, options: Mapping[str, Any] | None = None) -> VectorStore:
    """Open (not create) the store `spec` describes; `options` are the backend's connection settings.

    Raises UnknownVectorStore for a type not in SUPPORTED_VS_TYPES and StoreUnavailable when the backend's
    package is not installed. Call `create()` on the result to make sure the collection exists.
    """
    backend = _BACKENDS.get(spec.vs_type)
    if backend is None:
        known = ", ".join(SUPPORTED_VS_TYPES)
        raise UnknownVectorStore(f"unknown vector store type {spec.vs_type!r}; use one of: {known}")
    return _opener(spec.vs_type, backend)(spec, options or {})


def _opener(vs_type: str, backend: _Backend) -> _Opener:
    try:
        module = importlib.import_module(backend.module)
    except ModuleNotFoundError as exc:
        if exc.name and (exc.name == backend.module or exc.name.startswith("server.")):
            raise  # our own module is missing: a packaging bug, not a missing dependency
        raise StoreUnavailable(
            f"vector store {vs_type!r} needs the Python package {backend.package!r} "
            f"(import of {exc.name!r} failed); install it with: pip install {backend.package}"
        ) from exc
    return cast(_Opener, module.open_store)
