"""The HTTP contract with a deterministic hash embedder: envelope, status codes, bad input, nothing lost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import make_settings
from fastapi.testclient import TestClient

from server.api.app import create_app

KB = "测试库"
GUIDE = "安装方法：运行 make start 即可。然后打开浏览器访问接口文档。".encode()
CONFIG = "# 手册\n\n## 配置\n配置文件在 configs 目录，可以用环境变量覆盖。".encode()


def upload(client: TestClient, *files: tuple[str, bytes], kb: str = KB, **form: Any) -> Any:
    parts = [("files", (name, data, "application/octet-stream")) for name, data in files]
    return client.post("/knowledge_base/upload_docs", data={"knowledge_base_name": kb, **form}, files=parts)


def search(client: TestClient, query: str, kb: str = KB, **extra: Any) -> Any:
    return client.post("/knowledge_base/search_docs", json={"knowledge_base_name": kb, "query": query, **extra})


@pytest.fixture
def kb(client: TestClient) -> TestClient:
    assert client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB}).status_code == 200
    assert upload(client, ("docs/guide.txt", GUIDE), ("config.md", CONFIG)).json()["code"] == 200
    return client


def test_health_and_docs(client: TestClient) -> None:
    assert client.get("/health").json()["status"] == "ok"
    assert client.get("/", follow_redirects=False).headers["location"] == "/docs"
    assert client.get("/docs").status_code == 200
    assert "/knowledge_base/upload_docs" in client.get("/openapi.json").json()["paths"]


def test_list_and_details(kb: TestClient) -> None:
    assert kb.get("/knowledge_base/list_knowledge_bases").json()["data"] == [KB]
    files = kb.get("/knowledge_base/list_files", params={"knowledge_base_name": KB}).json()
    assert files == {"code": 200, "msg": "success", "data": ["config.md", "docs/guide.txt"]}
    details = kb.get("/knowledge_base/list_file_details", params={"knowledge_base_name": KB, "limit": 1}).json()
    assert details["data"]["total"] == 2 and len(details["data"]["files"]) == 1
    assert details["data"]["files"][0]["chunk_count"] >= 1 and details["data"]["files"][0]["in_folder"]


def test_search_is_a_bare_list_with_similarity_scores(kb: TestClient) -> None:
    hits = search(kb, "配置文件 环境变量", top_k=2).json()
    assert isinstance(hits, list) and len(hits) <= 2
    assert hits[0]["metadata"]["source"] == "config.md" and hits[0]["type"] == "Document"
    assert all(0.0 <= hit["score"] <= 1.0 for hit in hits)
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    unfiltered = search(kb, "配置文件", score_threshold=0.0).json()
    assert unfiltered and search(kb, "配置文件", score_threshold=1.0).json() == unfiltered  # Chatchat's "no filter"
    assert all(h["score"] >= 0.99 for h in search(kb, "配置文件", score_threshold=0.99).json())


def test_search_without_query_lists_a_files_chunks(kb: TestClient) -> None:
    chunks = search(kb, "", file_name="docs/guide.txt").json()
    assert chunks and all(c["metadata"]["source"] == "docs/guide.txt" and c["score"] is None for c in chunks)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"score_threshold": 1.5}, "score_threshold"),
        ({"score_threshold": -0.1}, "score_threshold"),
        ({"top_k": 0}, "top_k"),
        ({"top_k": -3}, "top_k"),
    ],
)
def test_bad_search_parameters(kb: TestClient, body: dict[str, Any], fragment: str) -> None:
    response = search(kb, "配置", **body)
    assert response.status_code == 422
    assert response.json()["code"] == 422 and fragment in response.json()["msg"]


def test_unknown_kb_is_404_everywhere(client: TestClient) -> None:
    for response in (
        search(client, "x", kb="nope"),
        client.get("/knowledge_base/list_files", params={"knowledge_base_name": "nope"}),
        upload(client, ("a.txt", b"hello"), kb="nope"),
        client.post("/knowledge_base/delete_knowledge_base", json="nope"),
        client.post("/knowledge_base/delete_docs", json={"knowledge_base_name": "nope", "file_names": ["a"]}),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["code"] == 404 and "nope" in response.json()["msg"]


@pytest.mark.parametrize("name", ["", "   ", "../evil", "a/b", "x" * 65, "bad\x07name", ".."])
def test_bad_kb_names_are_422(client: TestClient, name: str) -> None:
    response = client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": name})
    assert response.status_code == 422 and response.json()["msg"]
    assert client.get("/knowledge_base/list_knowledge_bases").json()["data"] == []


def test_duplicate_kb_is_409(kb: TestClient) -> None:
    response = kb.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB})
    assert response.status_code == 409 and "already exists" in response.json()["msg"]


def test_unknown_store_or_model_is_422(client: TestClient) -> None:
    r1 = client.post(
        "/knowledge_base/create_knowledge_base", json={"knowledge_base_name": "a", "vector_store_type": "chroma"}
    )
    r2 = client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": "a", "embed_model": "bge"})
    assert r1.status_code == 422 and "faiss" in r1.json()["msg"]
    assert r2.status_code == 422 and "hash" in r2.json()["msg"]
    assert client.get("/knowledge_base/list_knowledge_bases").json()["data"] == []


def _unchanged(client: TestClient) -> None:
    """The fixture's two files are still listed and searchable."""
    files = client.get("/knowledge_base/list_files", params={"knowledge_base_name": KB}).json()["data"]
    assert files == ["config.md", "docs/guide.txt"]
    assert search(client, "配置文件", top_k=5).json()


@pytest.mark.parametrize(
    ("name", "data", "status", "fragment"),
    [
        ("../escape.txt", b"x", 422, ".."),
        ("/etc/passwd", b"x", 422, "absolute"),
        ("virus.exe", b"MZ", 415, ".exe"),
        ("empty.txt", b"", 422, "empty.txt"),
        ("broken.pdf", b"%PDF-1.4 garbage \x00\x01", 422, "broken.pdf"),
        ("broken.docx", b"PK\x03\x04 not a zip", 422, "broken.docx"),
        ("photo.jpg", b"\xff\xd8\xff", 422, "not a readable image"),
        ("anim.gif", b"GIF89a", 415, "PNG or JPEG"),
    ],
)
def test_bad_uploads_fail_cleanly(kb: TestClient, name: str, data: bytes, status: int, fragment: str) -> None:
    response = upload(kb, (name, data))
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == status and fragment in body["msg"]
    assert "Traceback" not in response.text
    _unchanged(kb)


def test_duplicate_file_without_override(kb: TestClient) -> None:
    response = upload(kb, ("config.md", b"# new\ncompletely different"))
    assert response.status_code == 409 and "override" in response.json()["msg"]
    assert "配置文件" in search(kb, "", file_name="config.md").json()[0]["page_content"]
    replaced = upload(kb, ("config.md", "# 新版\n完全不同的内容。".encode()), override="true")
    assert replaced.status_code == 200
    texts = [c["page_content"] for c in search(kb, "", file_name="config.md").json()]
    assert texts and all("配置文件" not in t for t in texts)


def test_partial_failure_is_200_with_failed_files(kb: TestClient) -> None:
    response = upload(kb, ("ok.txt", "新的文件内容。".encode()), ("bad.exe", b"x"))
    assert response.status_code == 200
    assert list(response.json()["data"]["failed_files"]) == ["bad.exe"]


def test_oversize_upload_is_413(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, api={"max_upload_mb": 0.01})
    with TestClient(create_app(settings)) as client:
        client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB})
        response = upload(client, ("big.txt", b"a" * 20000))
        assert response.status_code == 413 and "max_upload_mb" in response.json()["msg"]
        assert client.get("/knowledge_base/list_files", params={"knowledge_base_name": KB}).json()["data"] == []


def test_api_key(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, api={"api_key": "s3cret"})
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/docs").status_code == 200
        denied = client.get("/knowledge_base/list_knowledge_bases")
        assert denied.status_code == 401 and "Bearer" in denied.json()["msg"]
        wrong = client.get("/knowledge_base/list_knowledge_bases", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = client.get("/knowledge_base/list_knowledge_bases", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200


def test_delete_docs_removes_every_chunk(kb: TestClient) -> None:
    assert search(kb, "", file_name="docs/guide.txt").json()
    response = kb.post(
        "/knowledge_base/delete_docs",
        json={"knowledge_base_name": KB, "file_names": ["docs/guide.txt"], "delete_content": True},
    )
    assert response.status_code == 200
    assert all(h["metadata"]["source"] != "docs/guide.txt" for h in search(kb, "安装 浏览器", top_k=10).json())
    download = kb.get("/knowledge_base/download_doc", params={"knowledge_base_name": KB, "file_name": "docs/guide.txt"})
    assert download.status_code == 404


def test_download_and_preview(kb: TestClient) -> None:
    params = {"knowledge_base_name": KB, "file_name": "docs/guide.txt"}
    response = kb.get("/knowledge_base/download_doc", params=params)
    assert response.status_code == 200 and response.content == GUIDE
    assert response.headers["content-disposition"].startswith("attachment")
    inline = kb.get("/knowledge_base/download_doc", params={**params, "preview": True})
    assert inline.headers["content-disposition"].startswith("inline")
    traversal = kb.get("/knowledge_base/download_doc", params={**params, "file_name": "../../info.db"})
    assert traversal.status_code == 422


def test_update_info_and_delete_kb_bodies(kb: TestClient) -> None:
    response = kb.post("/knowledge_base/update_info", json={"knowledge_base_name": KB, "kb_info": "产品手册"})
    assert response.json()["data"] == {"kb_info": "产品手册"}
    deleted = kb.post("/knowledge_base/delete_knowledge_base", json={"knowledge_base_name": KB})
    assert deleted.status_code == 200
    assert kb.get("/knowledge_base/list_knowledge_bases").json()["data"] == []


def test_custom_docs_upload_and_update_keeps_them(kb: TestClient) -> None:
    docs = '{"notes.txt": [{"page_content": "自定义片段一", "metadata": {"k": 1}}, {"page_content": "自定义片段二"}]}'
    response = upload(kb, ("notes.txt", "原始文件内容。".encode()), docs=docs)
    assert response.status_code == 200, response.text
    texts = sorted(c["page_content"] for c in search(kb, "", file_name="notes.txt").json())
    assert texts == ["自定义片段一", "自定义片段二"]
    kb.post("/knowledge_base/update_docs", json={"knowledge_base_name": KB, "file_names": ["notes.txt"]})
    assert len(search(kb, "", file_name="notes.txt").json()) == 2
    kb.post(
        "/knowledge_base/update_docs",
        json={"knowledge_base_name": KB, "file_names": ["notes.txt"], "override_custom_docs": True},
    )
    assert [c["page_content"] for c in search(kb, "", file_name="notes.txt").json()] == ["原始文件内容。"]


def test_update_docs_by_id_keeps_unedited_chunks(kb: TestClient) -> None:
    upload(
        kb,
        ("long.txt", "".join(f"第{i}句话讲的是主题{i}。" for i in range(60)).encode()),
        chunk_size=60,
        chunk_overlap=10,
    )
    chunks = search(kb, "", file_name="long.txt").json()
    assert len(chunks) >= 3
    first, second = chunks[0], chunks[1]
    edit = {first["id"]: {"page_content": "已编辑的片段", "metadata": first["metadata"]}, second["id"]: None}
    response = kb.post("/knowledge_base/update_docs_by_id", json={"knowledge_base_name": KB, "docs": edit})
    assert response.status_code == 200, response.text
    after = {c["id"]: c["page_content"] for c in search(kb, "", file_name="long.txt").json()}
    assert after[first["id"]] == "已编辑的片段" and second["id"] not in after
    assert all(after[c["id"]] == c["page_content"] for c in chunks[2:])
    details = kb.get("/knowledge_base/list_file_details", params={"knowledge_base_name": KB}).json()["data"]
    row = next(f for f in details["files"] if f["file_name"] == "long.txt")
    assert row["chunk_count"] == len(chunks) - 1 and row["custom_docs"]


def test_update_docs_by_id_unknown_id(kb: TestClient) -> None:
    response = kb.post(
        "/knowledge_base/update_docs_by_id", json={"knowledge_base_name": KB, "docs": {"nope": {"page_content": "x"}}}
    )
    assert response.status_code == 404


def test_recreate_vector_store_streams_progress(kb: TestClient) -> None:
    with kb.stream("POST", "/knowledge_base/recreate_vector_store", json={"knowledge_base_name": KB}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        body = response.read().decode()
    events = [line for line in body.split("\r\n\r\n") if line.startswith("data: ")]
    assert '"msg": "(1 / 2): config.md"' in events[0] and '"total": 2' in events[0]
    assert search(kb, "配置文件").json()
    missing = kb.post("/knowledge_base/recreate_vector_store", json={"knowledge_base_name": "nope"})
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/json")


def test_chunk_params_validated(kb: TestClient) -> None:
    response = upload(kb, ("c.txt", b"text"), chunk_size=50, chunk_overlap=50)
    assert response.status_code == 422 and "chunk_overlap" in response.json()["msg"]


def test_chinese_body_is_not_escaped(kb: TestClient) -> None:
    assert "测试库".encode() in kb.get("/knowledge_base/list_knowledge_bases").content
