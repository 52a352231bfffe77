"""The vector store backends: one descriptor per backend, registered in `STORES`, and the factory that opens them.

A descriptor names the backend, the module that implements it (imported only when a store of that type is first
opened, so a missing optional package matters only to the KBs that use it), the package to install, and the
`StoreOptions` model of its settings section (`vector_stores.<name>`). The implementing module exposes
`open_store(spec: StoreSpec, options: <its StoreOptions>) -> VectorStore`.

Adding a backend: write `server/vectorstores/<name>_store.py`, then add one `StoreBackend(...)` line to `STORES`
below (with its `StoreOptions` subclass beside it when it has settings). The settings, `/server/configs`, the Web
UI and the conformance suite pick it up from here. See docs/vector-stores.md.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from server.errors import InvalidInput, StoreUnavailable, UnknownVectorStore
from server.vectorstores.base import VectorStore


@dataclass(frozen=True)
class StoreSpec:
    vs_type: str  # a registered backend name
    kb_id: int
    kb_name: str
    embed_model: str
    dim: int
    directory: Path  # <data_dir>/<kb>/vector_store/<embed_model>/ (used by faiss)
    collection: str = ""  # an ASCII name from the registry for server backends (KB names may be Chinese)

    def __post_init__(self) -> None:
        if self.dim <= 0:
            raise InvalidInput(f"vector dimension must be positive, got {self.dim} ({self.embed_model})")


class StoreOptions(BaseModel):
    """A backend's settings section. A backend without settings uses this class as it is."""

    model_config = ConfigDict(extra="forbid")

    def resolved(self, data_dir: Path) -> StoreOptions:
        """These options with the defaults that depend on the data folder filled in."""
        return self

    def shared(self) -> bool:
        """Whether several processes may write this store at once (separate job workers need it)."""
        return False

    def missing(self) -> str | None:
        """Why the backend cannot be used with these settings (e.g. no server address), or None."""
        return None


class FaissOptions(StoreOptions):
    ann_threshold: int = Field(
        50_000, ge=0, description="chunks at which a KB's FAISS index becomes approximate (IVF); 0: always exact"
    )
    ann_probe_fraction: float = Field(
        1 / 16, gt=0, le=1, description="share of the IVF lists a search scans; higher: better recall, slower"
    )
    ann_max_probe: int = Field(96, gt=0, description="at most this many IVF lists per search")


class MilvusOptions(StoreOptions):
    uri: str = Field("", description="a Milvus Lite file, or http://host:19530; empty: <data_dir>/milvus.db")
    token: SecretStr | None = Field(None, description="user:password or an API key for a Milvus server")
    index_type: Literal["HNSW", "AUTOINDEX", "FLAT"] = "HNSW"

    def resolved(self, data_dir: Path) -> MilvusOptions:
        return self if self.uri else self.model_copy(update={"uri": str((data_dir / "milvus.db").resolve())})

    def shared(self) -> bool:
        return "://" in self.uri  # a Milvus server; a Milvus Lite file belongs to the process that opened it


PG_DRIVERS = ("postgresql", "postgresql+psycopg", "postgresql+psycopg2")
"""URL schemes accepted for vector_stores.pg.uri; all are served by psycopg 3 (Chatchat's PG_CONNECTION and its
docs write the first and the last)."""


class PgOptions(StoreOptions):
    uri: str | None = Field(
        None, description="postgresql://user:password@host:5432/db (psycopg 3 is used); unset: pg is off"
    )

    @field_validator("uri")
    @classmethod
    def _psycopg3(cls, value: str | None) -> str | None:
        """Normalise to postgresql+psycopg:// when the settings load, so a wrong URL stops start-up, not requests."""
        if not value:
            return value
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError("not a database URL; use postgresql://user:password@host:5432/database") from None
        if url.drivername not in PG_DRIVERS:
            raise ValueError(
                f"scheme {url.drivername}:// is not PostgreSQL; use postgresql://user:password@host:5432/database"
            )
        return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)

    def shared(self) -> bool:
        return True

    def missing(self) -> str | None:
        if self.uri:
            return None
        return (
            "the 'pg' vector store is not configured: set vector_stores.pg.uri in configs/settings.yaml "
            "(or ZHIKU_VECTOR_STORES__PG__URI) to postgresql+psycopg://user:password@host:5432/database"
        )


@dataclass(frozen=True)
class StoreBackend:
    name: str
    module: str  # defines open_store(spec, options)
    package: str  # what to pip install when the module's imports fail
    requires: str  # a top-level module the backend imports, looked up (not imported) to tell whether it is installed
    options: type[StoreOptions] = StoreOptions
    in_directory: bool = False  # its data lives in StoreSpec.directory (a rebuild builds beside it, then renames)
    persistent: bool = True  # False: in memory only (temporary knowledge), never a knowledge base's store

    def open(self, spec: StoreSpec, options: StoreOptions) -> VectorStore:
        opener = getattr(self._module(), "open_store")  # noqa: B009 - the module is only known at run time
        return cast(VectorStore, opener(spec, options))

    def unavailable(self, options: StoreOptions) -> str | None:
        """Why this backend cannot be used here (its package is missing, its settings are incomplete), or None."""
        if importlib.util.find_spec(self.requires) is None:
            return f"vector store {self.name!r} needs the Python package {self.package!r}: pip install {self.package}"
        return options.missing()

    def _module(self) -> Any:
        try:
            return importlib.import_module(self.module)
        except ModuleNotFoundError as exc:
            if exc.name and (exc.name == self.module or exc.name.startswith("server.")):
                raise  # our own module is missing: a packaging bug, not a missing dependency
            raise StoreUnavailable(
                f"vector store {self.name!r} needs the Python package {self.package!r} "
                f"(import of {exc.name!r} failed); install it with: pip install {self.package}"
            ) from exc


class StoreRegistry:
    """The registered backends by name; lookups of an unknown name raise UnknownVectorStore."""

    def __init__(self, *backends: StoreBackend) -> None:
        self._backends = {backend.name: backend for backend in backends}

    def __iter__(self) -> Iterator[StoreBackend]:
        return iter(self._backends.values())

    def names(self) -> tuple[str, ...]:
        return tuple(self._backends)

    def kb_types(self) -> tuple[str, ...]:
        """The types a knowledge base may be created with (persistent backends)."""
        return tuple(backend.name for backend in self if backend.persistent)

    def get(self, name: str) -> StoreBackend:
        backend = self._backends.get(name)
        if backend is None:
            raise UnknownVectorStore(f"unknown vector store type {name!r}; use one of: {', '.join(self.names())}")
        return backend

    def check_kb_type(self, name: str) -> str:
        if name not in self.kb_types():
            raise UnknownVectorStore(f"unknown vector_store_type {name!r}; use one of {list(self.kb_types())}")
        return name


STORES = StoreRegistry(
    StoreBackend("faiss", "server.vectorstores.faiss_store", "faiss-cpu", "faiss", FaissOptions, in_directory=True),
    StoreBackend("milvus", "server.vectorstores.milvus_store", "pymilvus", "pymilvus", MilvusOptions),
    StoreBackend("pg", "server.vectorstores.pg_store", "psycopg[binary] and pgvector", "pgvector", PgOptions),
    StoreBackend("memory", "server.vectorstores.memory_store", "numpy", "numpy", persistent=False),
)


def create_store(spec: StoreSpec, options: Mapping[str, StoreOptions] | None = None) -> VectorStore:
    """Open (not create) the store `spec` describes; `options` are the settings sections by backend name.

    Raises UnknownVectorStore for an unregistered type and StoreUnavailable when the backend's package is not
    installed. Call `create()` on the result to make sure the collection exists.
    """
    backend = STORES.get(spec.vs_type)
    chosen = (options or {}).get(backend.name) or backend.options()
    return backend.open(spec, chosen)
