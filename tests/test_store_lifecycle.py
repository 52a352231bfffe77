"""The HTTP knowledge-base lifecycle, run once per vector store, and moving a KB between stores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import make_settings
from fastapi.testclient import TestClient

from server.api.app import create_app

pytestmark = pytest.mark.integration
KB = "跨库测试"
FILES = {
    "guide/安装.md": "# 安装\n\n运行 make start 即可启动知库。首次启动会创建数据表并构建示例知识库。".encode(),
    "config.txt": "配置文件位于 configs 目录，环境变量 ZHIKU_API__PORT 可以修改端口。".encode(),
    "notes.md": b"# Notes\n\nScores are cosine similarities between zero and one.",
}
STORES = ["faiss", "milvus", "pg"]


def _overrides(request: pytest.FixtureRequest, vs_type: str) -> dict[str, Any]:
    if vs_type == "faiss":
        return {}
    fixture = {"milvus": "milvus_settings_overrides", "pg": "pg_settings_overrides"}[vs_type]
    try:
        return dict(request.getfixturevalue(fixture))
    except pytest.FixtureLookupError:
        pytest.fail(f"the {vs_type} test fixtures ({fixture}) are missing")


def _search(client: TestClient, query: str, top_k: int = 10) -> list[dict[str, Any]]:
    response = client.post(
        "/knowledge_base/search_docs", json={"knowledge_base_name": KB, "query": query, "top_k": top_k}
    )
    assert response.status_code == 200, response.text
    return response.json()


def _rebuild(client: TestClient, **body: Any) -> list[dict[str, Any]]:
    with client.stream(
        "POST", "/knowledge_base/recreate_vector_store", json={"knowledge_base_name": KB, **body}
    ) as response:
        assert response.status_code == 200
        return [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]


@pytest.mark.parametrize("vs_type", STORES)
def test_lifecycle_per_store(request: pytest.FixtureRequest, tmp_path: Path, vs_type: str) -> None:
    settings = make_settings(tmp_path, **_overrides(request, vs_type))
    with TestClient(create_app(settings)) as client:
        created = client.post(
            "/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB, "vector_store_type": vs_type}
        )
        assert created.status_code == 200, created.text
        parts = [("files", (name, data)) for name, data in FILES.items()]
        uploaded = client.post("/knowledge_base/upload_docs", data={"knowledge_base_name": KB}, files=parts)
        assert uploaded.status_code == 200 and uploaded.json()["data"]["failed_files"] == {}
        again = client.post("/knowledge_base/upload_docs", data={"knowledge_base_name": KB}, files=parts[:1])
        assert again.status_code == 409
        listed = client.get("/knowledge_base/list_files", params={"knowledge_base_name": KB}).json()["data"]
        assert listed == sorted(FILES)

        hits = _search(client, "怎么修改端口 环境变量")
        assert hits[0]["metadata"]["source"] == "config.txt"
        assert all(0.0 <= h["score"] <= 1.0 for h in hits)
        assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)

        updated = client.post(
            "/knowledge_base/update_docs",
            json={"knowledge_base_name": KB, "file_names": ["notes.md"], "chunk_size": 100, "chunk_overlap": 10},
        )
        assert updated.status_code == 200
        deleted = client.post(
            "/knowledge_base/delete_docs", json={"knowledge_base_name": KB, "file_names": ["config.txt"]}
        )
        assert deleted.status_code == 200
        assert all(h["metadata"]["source"] != "config.txt" for h in _search(client, "配置文件 端口", 50))

        events = _rebuild(client)
        assert [e["finished"] for e in events if "finished" in e] == [1, 2, 3]
        assert _search(client, "配置文件 端口")[0]["metadata"]["source"] == "config.txt"
        assert client.post("/knowledge_base/delete_knowledge_base", json=KB).status_code == 200
        assert client.get("/knowledge_base/list_knowledge_bases").json()["data"] == []


@pytest.mark.parametrize(("source", "target"), [("faiss", "milvus"), ("faiss", "pg"), ("milvus", "faiss")])
def test_move_kb_between_stores(request: pytest.FixtureRequest, tmp_path: Path, source: str, target: str) -> None:
    overrides: dict[str, Any] = {}
    for vs_type in (source, target):
        for key, value in _overrides(request, vs_type).items():
            overrides.setdefault(key, {}).update(value)
    with TestClient(create_app(make_settings(tmp_path, **overrides))) as client:
        client.post(
            "/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB, "vector_store_type": source}
        )
        parts = [("files", (name, data)) for name, data in FILES.items()]
        client.post("/knowledge_base/upload_docs", data={"knowledge_base_name": KB}, files=parts)
        before = _search(client, "配置文件 端口")
        events = _rebuild(client, vs_type=target)
        assert events[-1]["code"] == 200, events[-1]
        info = client.get("/knowledge_base/knowledge_base_info", params={"knowledge_base_name": KB}).json()["data"]
        assert info["vs_type"] == target and info["file_count"] == len(FILES)
        after = _search(client, "配置文件 端口")
        assert [h["metadata"]["source"] for h in after] == [h["metadata"]["source"] for h in before]
        assert [round(h["score"], 3) for h in after] == [round(h["score"], 3) for h in before]
