"""The Milvus store on Milvus Lite: the shared conformance suite plus Milvus-only behaviour."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("pymilvus")

from conftest import make_settings
from fastapi.testclient import TestClient

from server.api.app import create_app
from server.errors import ConfigError, InvalidInput, StoreDimensionMismatch, StoreUnavailable
from server.vectorstores.milvus_expr import metadata_filter, string_literal
from server.vectorstores.milvus_pool import POOL, Endpoint
from server.vectorstores.milvus_store import MilvusStore, endpoint_from
from server.vectorstores.registry import MilvusOptions
from tests.conformance.store_suite import DIM, add_sample, unit_vectors

COLLECTION = "zk_test_collection"


def _endpoint(tmp_path: Path) -> Endpoint:
    return endpoint_from(MilvusOptions(uri=str(tmp_path / "milvus.db")))


def _closed_port() -> int:
    """A port nothing listens on (bound, then closed), so a connect is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _open(tmp_path: Path, dim: int = DIM, collection: str = COLLECTION) -> MilvusStore:
    return MilvusStore(_endpoint(tmp_path), collection, dim)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MilvusStore]:
    opened = _open(tmp_path)
    opened.create()
    yield opened
    opened.close()


# -- filters -------------------------------------------------------------------------------------------------


def test_unicode_and_quote_filters_match_exactly(store: MilvusStore) -> None:
    tricky = ["说明书/第一章.md", 'a"b.md', "back\\slash.md", 'x" or metadata["k"] != "', "tab\tand\nline"]
    vectors = unit_vectors(len(tricky), seed=2)
    store.add([f"t{i}" for i in range(len(tricky))], vectors, [{"source": s, "标题": s} for s in tricky])
    for i, source in enumerate(tricky):
        hits = store.search(vectors[0], top_k=10, where={"source": source, "标题": source})
        assert [hit.text for hit in hits] == [f"t{i}"]


def test_filters_on_numbers_and_booleans(store: MilvusStore) -> None:
    vectors = unit_vectors(3, seed=3)
    store.add(["a", "b", "c"], vectors, [{"n": 1, "ok": True}, {"n": 2, "ok": False}, {"n": 2.5, "ok": True}])
    assert [hit.text for hit in store.search(vectors[0], top_k=5, where={"n": 2})] == ["b"]
    assert sorted(hit.text for hit in store.search(vectors[0], top_k=5, where={"ok": True})) == ["a", "c"]
    assert [hit.text for hit in store.search(vectors[0], top_k=5, where={"n": 2.5})] == ["c"]


@pytest.mark.parametrize("value", [None, ["a"], {"a": 1}, float("nan"), 2**64])
def test_unsupported_filter_values_are_refused(store: MilvusStore, value: Any) -> None:
    with pytest.raises(InvalidInput):
        store.search(unit_vectors(1)[0], top_k=1, where={"source": value})


def test_filter_expressions_escape_every_value() -> None:
    assert string_literal('a"b\\c\n') == '"a\\"b\\\\c\\n"'
    assert metadata_filter("metadata", {'k"': "v", "n": 3}) == 'metadata["k\\""] == "v" and metadata["n"] == 3'
    with pytest.raises(InvalidInput, match="control character"):
        string_literal("bell\x07")


# -- ids and sizes -------------------------------------------------------------------------------------------


def test_ids_with_quotes_are_stored_and_deleted_exactly(store: MilvusStore) -> None:
    ids = ["it's", 'say "hi"', "a', 'b", "plain"]
    store.add(ids, unit_vectors(4, seed=4), [{}] * 4, ids=ids)
    assert [chunk.id for chunk in store.get(ids)] == ids
    assert store.delete(["a', 'b", "it's", "missing", "bell\x07"]) == 2
    assert [chunk.id for chunk in store.get(ids)] == ['say "hi"', "plain"]


def test_oversized_ids_and_texts_are_refused(store: MilvusStore) -> None:
    with pytest.raises(InvalidInput, match="64 bytes"):
        store.add(["x"], unit_vectors(1), [{}], ids=["中" * 22])
    with pytest.raises(InvalidInput, match="65535 bytes"):
        store.add(["长" * 30_000], unit_vectors(1), [{}])
    assert store.count() == 0


def test_bad_collection_names_and_index_types_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        _open(tmp_path, collection="知识库")
    with pytest.raises(InvalidInput):
        _open(tmp_path, collection="1abc")
    with pytest.raises(ConfigError):
        MilvusStore(_endpoint(tmp_path), COLLECTION, DIM, index_type="IVF_PQ")
    assert POOL.users(_endpoint(tmp_path)) == 0


def test_a_dimension_mismatch_is_reported(store: MilvusStore, tmp_path: Path) -> None:
    other = _open(tmp_path, dim=DIM * 2)
    try:
        with pytest.raises(StoreDimensionMismatch, match=f"{DIM}-dim vectors"):
            other.create()
    finally:
        other.close()


# -- connections ---------------------------------------------------------------------------------------------


def test_stores_on_one_database_share_one_client(tmp_path: Path) -> None:
    first, second = _open(tmp_path, collection="zk_a"), _open(tmp_path, collection="zk_b")
    assert POOL.users(_endpoint(tmp_path)) == 2
    first.create()
    second.create()
    add_sample(first, n=4)
    first.close()
    assert second.count() == 0  # still connected after the other store closed
    second.drop()
    assert POOL.users(_endpoint(tmp_path)) == 0


def test_an_unreachable_server_fails_fast_without_leaking_the_token() -> None:
    port = _closed_port()
    started = time.perf_counter()
    with pytest.raises(StoreUnavailable) as caught:
        MilvusStore(Endpoint(f"http://root:hunter2@127.0.0.1:{port}", "root:hunter2"), COLLECTION, DIM)
    assert time.perf_counter() - started < 5
    assert "milvus" in caught.value.message
    assert f"127.0.0.1:{port}" in caught.value.message
    assert "hunter2" not in caught.value.message


def test_a_lite_uri_must_end_in_db(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\.db"):
        MilvusStore(endpoint_from(MilvusOptions(uri=str(tmp_path / "vectors"))), COLLECTION, DIM)


def test_a_second_process_gets_a_clear_error(store: MilvusStore, tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from server.errors import StoreUnavailable\n"
        "from server.vectorstores.milvus_store import MilvusStore, endpoint_from\n"
        "from server.vectorstores.registry import MilvusOptions\n"
        "try:\n"
        f"    MilvusStore(endpoint_from(MilvusOptions(uri=sys.argv[1])), {COLLECTION!r}, {DIM})\n"
        "except StoreUnavailable as exc:\n"
        "    print(exc.message)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "milvus.db")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert "milvus.db is in use by another process" in done.stdout, done.stderr[-2000:]
    assert "vector_stores.milvus.uri" in done.stdout


def test_vectors_are_stored_as_given_after_normalising(store: MilvusStore) -> None:
    vectors = unit_vectors(2) * np.float32(3.0)
    ids = store.add(["a", "b"], vectors, [{}, {}])
    assert store.search(vectors[1], top_k=1)[0].id == ids[1]


# -- through the HTTP API ------------------------------------------------------------------------------------

KB = "米尔维斯库"
FILES = {
    "安装.md": "安装方法：运行 make start 即可。然后打开浏览器访问接口文档。".encode(),
    "配置.md": "# 手册\n\n## 配置\n配置文件在 configs 目录，可以用环境变量覆盖。".encode(),
    "notes/faq.txt": "常见问题：向量库可以是 FAISS、Milvus 或 pgvector。".encode(),
}


def _upload(client: TestClient) -> None:
    parts = [("files", (name, data, "application/octet-stream")) for name, data in FILES.items()]
    response = client.post("/knowledge_base/upload_docs", data={"knowledge_base_name": KB}, files=parts)
    assert response.json()["code"] == 200 and response.json()["data"]["failed_files"] == {}, response.text


def _sources(client: TestClient, query: str = "配置文件 安装 向量库") -> list[str]:
    response = client.post("/knowledge_base/search_docs", json={"knowledge_base_name": KB, "query": query, "top_k": 10})
    assert response.status_code == 200, response.text
    return [hit["metadata"]["source"] for hit in response.json()]


def _collections(tmp_path: Path) -> list[str]:
    """The collections in the test's Lite database, through the pool the app shares (so its server stays up)."""
    endpoint = _endpoint(tmp_path)
    client = POOL.acquire(endpoint)
    try:
        return sorted(client.list_collections())
    finally:
        POOL.release(endpoint)


def test_a_milvus_kb_through_the_api(tmp_path: Path, milvus_settings_overrides: dict[str, Any]) -> None:
    settings = make_settings(tmp_path, **milvus_settings_overrides)
    with TestClient(create_app(settings)) as client:
        created = client.post(
            "/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB, "vector_store_type": "milvus"}
        )
        assert created.status_code == 200, created.text
        _upload(client)
        assert set(_sources(client)) == set(FILES)
        deleted = client.post(
            "/knowledge_base/delete_docs", json={"knowledge_base_name": KB, "file_names": ["配置.md"]}
        )
        assert deleted.status_code == 200, deleted.text
        assert set(_sources(client)) == {"安装.md", "notes/faq.txt"}
        assert client.post("/knowledge_base/delete_knowledge_base", json=KB).status_code == 200
    assert _collections(tmp_path) == []
    assert POOL.users(_endpoint(tmp_path)) == 0  # the app let go of the database at shutdown


def _recreate(client: TestClient, vs_type: str) -> list[dict[str, Any]]:
    body = {"knowledge_base_name": KB, "vs_type": vs_type}
    with client.stream("POST", "/knowledge_base/recreate_vector_store", json=body) as response:
        text = response.read().decode()
    return [json.loads(line[len("data: ") :]) for line in text.split("\r\n\r\n") if line.startswith("data: ")]


def test_moving_a_kb_between_faiss_and_milvus(tmp_path: Path, milvus_settings_overrides: dict[str, Any]) -> None:
    settings = make_settings(tmp_path, **milvus_settings_overrides)
    with TestClient(create_app(settings)) as client:
        assert client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB}).status_code == 200
        _upload(client)
        before = sorted(_sources(client))
        for vs_type in ("milvus", "faiss"):
            seen: list[list[str]] = []
            stop = threading.Event()
            searcher = threading.Thread(target=_search_until, args=(client, stop, seen))
            searcher.start()
            try:
                events = _recreate(client, vs_type)
            finally:
                stop.set()
                searcher.join(timeout=30)
            assert events[-1]["code"] == 200 and events[-1]["failed_files"] == {}, events
            info = client.get("/knowledge_base/knowledge_base_info", params={"knowledge_base_name": KB}).json()
            assert info["data"]["vs_type"] == vs_type
            assert sorted(_sources(client)) == before
            assert seen and [s for s in seen if sorted(s) != before] == []  # searches during the move
            assert len(_collections(tmp_path)) == (1 if vs_type == "milvus" else 0)


def _search_until(client: TestClient, stop: threading.Event, seen: list[list[str]]) -> None:
    """Searches until `stop`; a failed search is recorded as its error text, for the test thread to see."""
    while not stop.is_set() or not seen:
        try:
            seen.append(_sources(client))
        except AssertionError as error:
            seen.append([str(error)])
