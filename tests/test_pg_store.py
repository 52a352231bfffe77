"""The PostgreSQL + pgvector store against a real server (tests/fixtures_pg.py): conformance, SQL safety, failures
and the HTTP flow of a pg knowledge base."""

from __future__ import annotations

import hashlib
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import make_settings
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from server.api.app import create_app
from server.errors import (
    ConfigError,
    InvalidInput,
    StoreDimensionMismatch,
    StoreMissing,
    StoreNotConfigured,
    StoreUnavailable,
)
from server.vectorstores.pg_engine import make_engine, shared_engine
from server.vectorstores.pg_store import PgStore, open_store
from server.vectorstores.registry import PgOptions, StoreSpec, create_store
from tests.conformance.store_suite import DIM, add_sample, unit_vectors
from tests.fixtures_pg import EmbeddedPostgres

pytestmark = pytest.mark.integration
KB = "向量库"


def _table(tmp_path: Path, dim: int) -> str:
    return "zk_" + hashlib.sha1(f"{tmp_path}/{dim}".encode()).hexdigest()[:16]


def _spec(uri_table: str, dim: int = DIM, kb_name: str = KB) -> StoreSpec:
    return StoreSpec("pg", 1, kb_name, "hash", dim, Path("unused"), collection=uri_table)


def _libpq(uri: str) -> str:
    return make_url(uri).set(drivername="postgresql").render_as_string(hide_password=False)


def _table_exists(uri: str, table: str) -> bool:
    with psycopg.connect(_libpq(uri)) as conn:
        return conn.execute("SELECT to_regclass(%s)", [f'"{table}"']).fetchone() != (None,)


@pytest.fixture
def store(pg_server_uri: str) -> PgStore:
    opened = open_store(_spec(f"zk_{uuid.uuid4().hex[:16]}"), PgOptions(uri=pg_server_uri))
    opened.create()
    return opened


# -- metadata filters and SQL safety -------------------------------------------------------------------------


def test_where_matches_unicode_and_json_values(store: PgStore) -> None:
    metas: list[dict[str, Any]] = [
        {"source": "说明书/第一章.md", "page": 3, "tags": ["中文", "😀"], "info": {"作者": "张三"}},
        {"source": "说明书/第一章.md", "page": "3", "tags": ["英文"]},
        {"source": "其他.md", "page": 3},
    ]
    ids = store.add(["一", "二", "三"], unit_vectors(3), metas, ids=["a", "b", "c"])
    query = unit_vectors(1, seed=5)[0]

    def found(where: dict[str, Any]) -> list[str]:
        return sorted(hit.id for hit in store.search(query, top_k=10, where=where))

    assert found({"source": "说明书/第一章.md"}) == ["a", "b"]
    assert found({"page": 3}) == ["a", "c"]  # a number never matches the string "3"
    assert found({"info": {"作者": "张三"}}) == ["a"]
    assert found({"tags": ["中文", "😀"]}) == ["a"]
    assert found({"source": "说明书/第一章.md", "page": "3"}) == ["b"]
    assert store.get(ids)[0].metadata == metas[0]


INJECTIONS = ["x'); DROP TABLE zk_victim; --", "'\" OR 1=1 --", "$$; DELETE FROM pg_extension; $$", "\\x00'::jsonb"]


@pytest.mark.parametrize("value", INJECTIONS)
def test_sql_looking_values_are_plain_data(store: PgStore, value: str) -> None:
    store.add([value], unit_vectors(1), [{"source": value, value: value}], ids=[value])
    assert [hit.id for hit in store.search(unit_vectors(1)[0], top_k=5, where={"source": value})] == [value]
    assert store.search(unit_vectors(1)[0], top_k=5, where={"source": value + " "}) == []
    assert store.get([value])[0].metadata == {"source": value, value: value}
    assert store.delete([value, "' OR '1'='1"]) == 1
    assert store.count() == 0


def test_kb_names_never_reach_sql_and_bad_table_names_are_refused(pg_server_uri: str) -> None:
    options = PgOptions(uri=pg_server_uri)
    table = f"zk_{uuid.uuid4().hex[:16]}"
    opened = open_store(_spec(table, kb_name='Robert"); DROP TABLE students; --'), options)
    opened.create()
    add_sample(opened, n=3)
    assert opened.count() == 3
    for bad in ['zk"; DROP TABLE x; --', "Zk_upper", "知识库", "", "1abc", "a" * 64, "zk-1"]:
        with pytest.raises(InvalidInput, match="table name"):
            open_store(_spec(bad), options)


def test_nul_characters_are_refused_cleanly(store: PgStore) -> None:
    with pytest.raises(InvalidInput, match="NUL"):
        store.add(["bad\x00text"], unit_vectors(1), [{}])
    assert store.count() == 0


# -- the store's own behaviour --------------------------------------------------------------------------------


def test_stores_on_one_url_share_an_engine(pg_server_uri: str) -> None:
    assert shared_engine(pg_server_uri) is shared_engine(pg_server_uri)


def test_create_keeps_data_and_refuses_another_dimension(store: PgStore, pg_server_uri: str) -> None:
    add_sample(store, n=4)
    store.create()
    assert store.count() == 4
    other = PgStore(shared_engine(pg_server_uri), store.table, DIM * 2, kb_name=KB)
    with pytest.raises(StoreDimensionMismatch, match=rf"{DIM * 2}-dim.*--recreate-vs -n {KB}"):
        other.create()


def test_the_hnsw_index_is_built_once_the_table_is_big_enough(pg_server_uri: str) -> None:
    table = f"zk_{uuid.uuid4().hex[:16]}"
    store = PgStore(shared_engine(pg_server_uri), table, DIM, index_min_rows=50)
    store.create()
    ids, vectors = add_sample(store, n=40)
    assert not store.indexed
    more = store.add(["x"] * 20, unit_vectors(20, seed=1), [{"source": "more.md"}] * 20)
    assert store.indexed
    with psycopg.connect(_libpq(pg_server_uri)) as conn:
        conn.execute("SET enable_seqscan = off")  # what the planner does on a table too big to scan
        plan = conn.execute(
            f'EXPLAIN SELECT id FROM "{table}" ORDER BY embedding <=> %s::vector LIMIT 3', [str(vectors[0].tolist())]
        ).fetchall()
    assert f"Index Scan using {table}_hnsw" in " ".join(row[0] for row in plan)
    for i in range(40):
        assert store.search(vectors[i], top_k=1)[0].id == ids[i]
    filtered = store.search(vectors[0], top_k=30, where={"source": "more.md"})
    assert sorted(hit.id for hit in filtered) == sorted(more)
    assert [hit.score for hit in filtered] == sorted((hit.score for hit in filtered), reverse=True)
    reopened = PgStore(shared_engine(pg_server_uri), table, DIM, index_min_rows=50)
    reopened.create()
    assert reopened.indexed


def test_a_missing_table_says_how_to_rebuild(store: PgStore) -> None:
    store.drop()
    with pytest.raises(
        StoreMissing, match=f"is missing; rebuild it with: python init_database.py --recreate-vs -n {KB}"
    ):
        store.count()


def test_concurrent_adds_and_searches(store: PgStore) -> None:
    base_ids, base = add_sample(store, n=100)

    def search_many(seed: int) -> None:
        for i in range(0, 100, 7):
            assert store.search(base[(i + seed) % 100], top_k=3)[0].id == base_ids[(i + seed) % 100]

    def write_many() -> None:
        for batch in range(10):
            store.delete(store.add(["w"] * 20, unit_vectors(20, seed=100 + batch), [{"batch": batch}] * 20)[:5])

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(write_many)] + [pool.submit(search_many, seed) for seed in range(3)]
        for future in futures:
            future.result(timeout=60)
    assert store.count() == 100 + 10 * 15


# -- configuration and failures -------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once the socket is closed


def test_an_unreachable_server_fails_fast_naming_the_address() -> None:
    port = _closed_port()
    uri = f"postgresql+psycopg://zhiku:s3cret-pw@127.0.0.1:{port}/kb"
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as caught:
        open_store(_spec("zk_unreachable"), PgOptions(uri=uri)).create()
    assert time.monotonic() - started < 10
    assert "'pg'" in caught.value.message and f"127.0.0.1:{port}" in caught.value.message
    assert "s3cret-pw" not in caught.value.message


def test_not_configured_says_which_setting_to_set() -> None:
    for options in ({}, {"pg": PgOptions()}):
        with pytest.raises(StoreNotConfigured, match=r"vector_stores\.pg\.uri"):
            create_store(_spec("zk_any"), options)


@pytest.mark.parametrize("uri", ["not a url at all", "mysql://u:p@h/db", "sqlite:///x.db"])
def test_a_wrong_url_stops_the_settings_from_loading(tmp_path: Path, uri: str) -> None:
    with pytest.raises(ConfigError, match=r"vector_stores\.pg\.uri: .*postgresql://") as caught:
        make_settings(tmp_path, vector_stores={"pg": {"uri": uri}})
    assert ":p@" not in caught.value.message


@pytest.mark.parametrize("scheme", ["postgresql", "postgresql+psycopg2", "postgresql+psycopg"])
def test_chatchat_style_urls_are_served_by_psycopg3(tmp_path: Path, scheme: str) -> None:
    settings = make_settings(tmp_path, vector_stores={"pg": {"uri": f"{scheme}://u:p@h:5433/db"}})
    assert settings.store_options()["pg"] == PgOptions(uri="postgresql+psycopg://u:p@h:5433/db")


def test_missing_extension_rights_are_explained(pg_server: EmbeddedPostgres, pg_database: str) -> None:
    role = f"limited_{uuid.uuid4().hex[:8]}"
    database = make_url(pg_database).database
    with psycopg.connect(_libpq(pg_database), autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
        conn.execute(f'GRANT CREATE ON SCHEMA public TO "{role}"')
    limited = make_url(pg_database).set(username=role).render_as_string(hide_password=False)
    engine = make_engine(limited)
    try:
        with pytest.raises(StoreUnavailable, match=rf"pgvector.*{database}.*CREATE EXTENSION vector"):
            PgStore(engine, "zk_limited", DIM).create()
    finally:
        engine.dispose()


# -- through the API --------------------------------------------------------------------------------------------

GUIDE = "安装方法：运行 make start 即可。然后打开浏览器访问接口文档。".encode()
CONFIG = "# 手册\n\n## 配置\n配置文件在 configs 目录，可以用环境变量覆盖。".encode()


def _upload(client: TestClient, *files: tuple[str, bytes]) -> Any:
    parts = [("files", (name, data, "application/octet-stream")) for name, data in files]
    return client.post("/knowledge_base/upload_docs", data={"knowledge_base_name": KB}, files=parts)


def _search(client: TestClient, query: str, top_k: int = 10) -> list[dict[str, Any]]:
    response = client.post(
        "/knowledge_base/search_docs", json={"knowledge_base_name": KB, "query": query, "top_k": top_k}
    )
    assert response.status_code == 200, response.text
    return list(response.json())


def _tables(uri: str) -> list[str]:
    with psycopg.connect(_libpq(uri)) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1").fetchall()
    return [row[0] for row in rows]


def _pg_client(tmp_path: Path, overrides: dict[str, Any]) -> TestClient:
    return TestClient(create_app(make_settings(tmp_path, **overrides)))


def test_a_pg_knowledge_base_over_http(tmp_path: Path, pg_settings_overrides: dict[str, Any]) -> None:
    uri = pg_settings_overrides["vector_stores"]["pg"]["uri"]
    with _pg_client(tmp_path, pg_settings_overrides) as client:
        created = client.post(
            "/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB, "vector_store_type": "pg"}
        )
        assert created.status_code == 200, created.text
        [table] = _tables(uri)
        assert _upload(client, ("docs/guide.txt", GUIDE), ("config.md", CONFIG)).json()["code"] == 200
        hits = _search(client, "配置文件在哪里")
        assert {hit["metadata"]["source"] for hit in hits} == {"docs/guide.txt", "config.md"}
        assert all(0.0 <= hit["score"] <= 1.0 for hit in hits)

        deleted = client.post(
            "/knowledge_base/delete_docs", json={"knowledge_base_name": KB, "file_names": ["docs/guide.txt"]}
        )
        assert deleted.status_code == 200, deleted.text
        assert {hit["metadata"]["source"] for hit in _search(client, "安装 浏览器 接口文档")} == {"config.md"}

        gone = client.post("/knowledge_base/delete_knowledge_base", json=KB)
        assert gone.status_code == 200, gone.text
        assert table not in _tables(uri)
        assert client.get("/knowledge_base/list_knowledge_bases").json()["data"] == []


def test_pg_kb_creation_fails_cleanly_when_pg_is_down_or_unset(tmp_path: Path) -> None:
    down = {"vector_stores": {"pg": {"uri": f"postgresql+psycopg://u:pw@127.0.0.1:{_closed_port()}/kb"}}}
    for overrides, status, fragment in [(down, 503, "unreachable"), ({}, 503, "vector_stores.pg.uri")]:
        with _pg_client(tmp_path, overrides) as client:
            response = client.post(
                "/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB, "vector_store_type": "pg"}
            )
            assert response.status_code == status and fragment in response.json()["msg"]
            assert response.json()["code"] == status
            assert client.get("/knowledge_base/list_knowledge_bases").json()["data"] == []


def _rebuild(client: TestClient, vs_type: str) -> str:
    body = {"knowledge_base_name": KB, "vs_type": vs_type}
    with client.stream("POST", "/knowledge_base/recreate_vector_store", json=body) as response:
        assert response.status_code == 200
        return response.read().decode()


def test_a_kb_moves_from_faiss_to_pg_and_back(tmp_path: Path, pg_settings_overrides: dict[str, Any]) -> None:
    uri = pg_settings_overrides["vector_stores"]["pg"]["uri"]
    with _pg_client(tmp_path, pg_settings_overrides) as client:
        assert client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB}).status_code == 200
        assert _upload(client, ("docs/guide.txt", GUIDE), ("config.md", CONFIG)).json()["code"] == 200
        before = {hit["page_content"] for hit in _search(client, "配置文件")}

        assert f"rebuilt {KB}" in _rebuild(client, "pg")
        details = client.get("/knowledge_base/list_knowledge_base_details").json()["data"]
        assert details[0]["vs_type"] == "pg"
        assert len(_tables(uri)) == 1
        assert {hit["page_content"] for hit in _search(client, "配置文件")} == before

        assert f"rebuilt {KB}" in _rebuild(client, "faiss")
        assert _tables(uri) == []  # the pg table was dropped once the registry pointed at FAISS again
        assert {hit["page_content"] for hit in _search(client, "配置文件")} == before
