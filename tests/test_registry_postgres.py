"""The registry itself on PostgreSQL (any SQLAlchemy URL works): migrations, then a KB lifecycle over the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import make_settings
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from server.api.app import create_app
from server.db.engine import make_engine
from server.db.schema import is_initialised, upgrade_database

pytestmark = pytest.mark.integration
KB = "注册表库"
DOC = "# 部署\n\n注册表可以放在 PostgreSQL 里，只要设置 database_url。".encode()


def _tables(url: str) -> set[str]:
    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq) as conn:
        return {row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def test_migrations_create_the_schema_and_can_run_again(pg_database: str) -> None:
    engine = make_engine(pg_database)
    try:
        assert not is_initialised(engine)
        upgrade_database(engine)
        upgrade_database(engine)  # already at head: nothing to do
        assert is_initialised(engine)
    finally:
        engine.dispose()
    assert {"alembic_version", "knowledge_base", "knowledge_file", "chunk"} <= _tables(pg_database)


@pytest.mark.parametrize("vs_type", ["faiss", "pg"])
def test_a_kb_lifecycle_with_the_registry_on_postgres(tmp_path: Path, pg_database: str, vs_type: str) -> None:
    overrides: dict[str, Any] = {"database_url": pg_database, "vector_stores": {"pg": {"uri": pg_database}}}
    with TestClient(create_app(make_settings(tmp_path, **overrides))) as client:
        created = client.post(
            "/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB, "vector_store_type": vs_type}
        )
        assert created.status_code == 200, created.text
        parts = [("files", ("部署.md", DOC, "text/markdown"))]
        uploaded = client.post("/knowledge_base/upload_docs", data={"knowledge_base_name": KB}, files=parts)
        assert uploaded.status_code == 200 and uploaded.json()["data"]["failed_files"] == {}
        listed = client.get("/knowledge_base/list_files", params={"knowledge_base_name": KB}).json()["data"]
        assert listed == ["部署.md"]

        hits = client.post("/knowledge_base/search_docs", json={"knowledge_base_name": KB, "query": "注册表"}).json()
        assert hits and hits[0]["metadata"]["source"] == "部署.md"

        deleted = client.post("/knowledge_base/delete_knowledge_base", json=KB)
        assert deleted.status_code == 200, deleted.text
        assert client.get("/knowledge_base/list_knowledge_bases").json()["data"] == []
    assert not any(name.startswith("zk_") for name in _tables(pg_database))
