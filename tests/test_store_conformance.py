"""The conformance suite, run for every vector store backend registered in server.vectorstores.registry.STORES.

A backend is found here by its registration alone: one without settings runs with its default options; one
that needs a server gets it from `_options` below (a new server backend adds its case there).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from server.vectorstores.base import VectorStore
from server.vectorstores.registry import STORES, MilvusOptions, PgOptions, StoreBackend, StoreOptions, StoreSpec
from tests.conformance.store_suite import StoreConformance

# Milvus Lite is pure Python: adding 10k chunks of dim 384 and one search took 6-10 s on the 2-core test box (up to
# 17 s under load); PostgreSQL's HNSW index takes a few seconds too. FAISS and the in-memory store stay under 3 s.
_BATCH_BUDGET_S = {"milvus": 30.0, "pg": 30.0}
_NEEDS_SERVER = {"pg"}


def _options(backend: StoreBackend, tmp_path: Path, request: pytest.FixtureRequest) -> StoreOptions:
    if backend.name == "milvus":
        pytest.importorskip("pymilvus")
        pytest.importorskip("milvus_lite")
        return MilvusOptions(uri=str(tmp_path / "milvus.db"))
    if backend.name == "pg":
        return PgOptions(uri=request.getfixturevalue("pg_server_uri"))
    return backend.options()


def _param(name: str) -> Any:
    marks = [pytest.mark.integration] if name in _NEEDS_SERVER else []
    return pytest.param(name, marks=marks, id=name)


@pytest.fixture(params=[_param(name) for name in STORES.names()])
def backend(request: pytest.FixtureRequest) -> StoreBackend:
    return STORES.get(request.param)


class TestRegisteredStore(StoreConformance):
    @pytest.fixture(autouse=True)
    def _setup(self, backend: StoreBackend, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        self.backend = backend
        self.options = _options(backend, tmp_path, request)
        self.collection = f"zk_conformance_{uuid.uuid4().hex[:12]}"
        self.batch_add_budget_s = _BATCH_BUDGET_S.get(backend.name, 3.0)
        self.persistent = backend.persistent

    def _open(self, tmp_path: Path, dim: int, collection: str) -> VectorStore:
        spec = StoreSpec(self.backend.name, 1, "samples", "model", dim, tmp_path / "vs" / collection, collection)
        return self.backend.open(spec, self.options)

    def make_store(self, tmp_path: Path, dim: int) -> VectorStore:
        return self._open(tmp_path, dim, self.collection)

    def reopen(self, store: VectorStore, tmp_path: Path, dim: int) -> VectorStore:
        store.close()
        return self._open(tmp_path, dim, self.collection)


def test_every_knowledge_base_store_persists() -> None:
    """A KB's store must survive a restart; in-memory backends exist for temporary knowledge only."""
    assert STORES.kb_types() == ("faiss", "milvus", "pg")
    assert all(STORES.get(name).persistent for name in STORES.kb_types())
    assert not STORES.get("memory").persistent
