"""FAQ knowledge bases over HTTP: import from CSV/XLSX/JSON/JSONL, list, edit, and direct answers in KB chat and
/v1/chat/completions (no model configured: a direct answer needs none)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from test_chat_api import events

from server.chat.events import NO_LLM_ANSWER

KB = "faq"
CSV = (
    "问题,相似问题,答案\n如何上传文件？,怎么添加文档|上传的方法,在知识库页面点击上传。\n"
    "How do I delete a KB?,,Use delete_knowledge_base.\n"
)
RESET = {"question": "Reset password?", "similar": ["Forgot it", "Lost it"], "answer": "Press reset."}


def _import(client: TestClient, name: str, data: bytes, **form: Any) -> Any:
    files = {"file": (name, data, "application/octet-stream")}
    return client.post("/knowledge_base/import_faq", data={"knowledge_base_name": KB, **form}, files=files)


@pytest.fixture
def kb(client: TestClient) -> TestClient:
    assert client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB}).status_code == 200
    response = _import(client, "help.csv", CSV.encode())
    assert response.status_code == 201, response.text
    return client


def _xlsx(rows: list[list[str]]) -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_import_stores_one_faq_file_with_every_phrasing(kb: TestClient) -> None:
    listed = kb.get("/knowledge_base/list_faq", params={"knowledge_base_name": KB}).json()["data"]
    assert [one["file_name"] for one in listed] == ["help.faq.jsonl"]
    entries = listed[0]["entries"]
    assert entries[0] == {
        "id": "1",
        "questions": ["如何上传文件？", "怎么添加文档", "上传的方法"],
        "answer": "在知识库页面点击上传。",
    }
    assert listed[0]["question_count"] == 4
    details = kb.get("/knowledge_base/list_file_details", params={"knowledge_base_name": KB}).json()["data"]
    assert details["files"][0]["loader"] == "FaqLoader" and details["files"][0]["chunk_count"] == 4


@pytest.mark.parametrize(
    ("name", "data"),
    [
        (
            "a.xlsx",
            _xlsx([["Question", "Answer", "Similar"], ["Reset password?", "Press reset.", "Forgot it\nLost it"]]),
        ),
        ("a.json", json.dumps({"faq": [RESET]}).encode()),
        ("a.jsonl", b'{"questions": ["Reset password?", "Forgot it", "Lost it"], "answer": "Press reset."}\n'),
    ],
)
def test_every_format_reads_the_same_pairs(client: TestClient, name: str, data: bytes) -> None:
    client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB})
    response = _import(client, name, data)
    assert response.status_code == 201, response.text
    entry = response.json()["data"]["entries"][0]
    assert entry["questions"] == ["Reset password?", "Forgot it", "Lost it"] and entry["answer"] == "Press reset."
    assert response.json()["data"]["file_name"] == "a.faq.jsonl"


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("a.csv", b"title,body\nx,y\n", "question column"),
        ("a.csv", "问题,答案\n怎么办,\n".encode(), "no answer"),
        ("a.csv", "问题,答案\n怎么办,甲\n怎么办,乙\n".encode(), "another answer"),
        ("a.json", b'{"x": 1}', "list of"),
        ("a.json", b"[1, 2", "invalid JSON"),
        ("a.jsonl", b'{"question": "q"}\n', "no answer"),
        ("a.txt", b"q,a\n", "is read from"),
        ("a.xlsx", b"PK\x03\x04 not a workbook", "xlsx"),
        ("a.csv", ("问题,答案\nq," + "长" * 20_000 + "\n").encode(), "characters, more than"),
    ],
)
def test_bad_faq_files_are_refused_with_what_to_fix(kb: TestClient, name: str, data: bytes, words: str) -> None:
    response = _import(kb, name, data)
    assert response.status_code == 422, response.text
    message = response.json()["msg"]
    assert words in message and "/tmp" not in message and "Traceback" not in message
    assert len(kb.get("/knowledge_base/list_faq", params={"knowledge_base_name": KB}).json()["data"]) == 1


def test_same_name_is_409_unless_override(kb: TestClient) -> None:
    again = _import(kb, "help.csv", b"q,a\nNew?,Yes.\n")
    assert again.status_code == 409
    replaced = _import(kb, "help.csv", b"q,a\nNew?,Yes.\n", override="true")
    assert replaced.status_code == 201 and replaced.json()["data"]["question_count"] == 1


def test_update_rewrites_the_file_and_its_chunks(kb: TestClient) -> None:
    entries = [
        {"id": "1", "questions": ["如何上传文件？"], "answer": "拖进上传框。"},
        {"questions": ["能导出吗？"], "answer": "可以，点导出。"},
    ]
    body = {"knowledge_base_name": KB, "file_name": "help.faq.jsonl", "entries": entries}
    response = kb.post("/knowledge_base/update_faq", json=body)
    assert response.status_code == 200, response.text
    assert [e["id"] for e in response.json()["data"]["entries"]] == ["1", "2"]
    found = kb.post("/knowledge_base/search_docs", json={"knowledge_base_name": KB, "query": "能导出吗", "top_k": 5})
    texts = [doc["page_content"] for doc in found.json()]
    assert "能导出吗？\n可以，点导出。" in texts and not any("delete_knowledge_base" in text for text in texts)
    missing = kb.post("/knowledge_base/update_faq", json={**body, "file_name": "nope.faq.jsonl"})
    assert missing.status_code == 404 and "list_faq" in missing.json()["msg"]
    empty = kb.post("/knowledge_base/update_faq", json={**body, "entries": [{"questions": ["x"], "answer": " "}]})
    assert empty.status_code == 422


def test_kb_chat_answers_a_stored_question_directly_without_a_model(kb: TestClient) -> None:
    body = {"query": "如何上传文件", "knowledge_base_name": KB, "stream": True}
    got = events(kb.post("/chat/knowledge_base_chat", json=body))
    assert got[0] == {"answer": "在知识库页面点击上传。"} and NO_LLM_ANSWER not in json.dumps(got)
    assert got[-1]["direct_answer"]["exact"] is True and got[-1]["direct_answer"]["file_name"] == "help.faq.jsonl"
    assert "help.faq.jsonl" in got[-1]["docs"][0]
    one = events(kb.post("/chat/knowledge_base_chat", json={**body, "stream": False}))
    assert one[0]["answer"] == "在知识库页面点击上传。" and one[0]["direct_answer"]["faq_id"] == "1"


def test_threshold_per_kb_turns_direct_answers_on_and_off(kb: TestClient) -> None:
    body = {"query": "upload a file please", "knowledge_base_name": KB, "stream": False, "search_mode": "dense"}
    assert "direct_answer" not in events(kb.post("/chat/knowledge_base_chat", json=body))[0]
    set_to = kb.post(
        "/knowledge_base/update_direct_answer_threshold",
        json={"knowledge_base_name": KB, "direct_answer_threshold": 0.0},
    )
    assert set_to.json()["data"] == {"direct_answer_threshold": 0.0}
    assert "direct_answer" in events(kb.post("/chat/knowledge_base_chat", json=body))[0]
    kb.post(
        "/knowledge_base/update_direct_answer_threshold", json={"knowledge_base_name": KB, "direct_answer_threshold": 1}
    )
    exact = {**body, "query": "如何上传文件？"}
    assert "direct_answer" not in events(kb.post("/chat/knowledge_base_chat", json=exact))[0]
    info = kb.get("/knowledge_base/knowledge_base_info", params={"knowledge_base_name": KB}).json()["data"]
    assert info["direct_answer_threshold"] == 1.0
    bad = kb.post(
        "/knowledge_base/update_direct_answer_threshold", json={"knowledge_base_name": KB, "direct_answer_threshold": 2}
    )
    assert bad.status_code == 422
    reset = kb.post(
        "/knowledge_base/update_direct_answer_threshold",
        json={"knowledge_base_name": KB, "direct_answer_threshold": None},
    )
    assert reset.json()["data"] == {"direct_answer_threshold": None}


def test_openai_route_gives_the_stored_answer_with_its_source(kb: TestClient) -> None:
    body = {
        "model": "any",
        "messages": [{"role": "user", "content": "How do I delete a KB"}],
        "knowledge_base_name": KB,
    }
    response = kb.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["model"] == "direct_answer"
    content = answer["choices"][0]["message"]["content"]
    assert content.startswith("Use delete_knowledge_base.") and "help.faq.jsonl" in content


def test_faq_survives_a_rebuild_and_an_archive(kb: TestClient) -> None:
    rebuilt = kb.post("/knowledge_base/recreate_vector_store", json={"knowledge_base_name": KB})
    assert rebuilt.status_code == 200
    details = kb.get("/knowledge_base/list_file_details", params={"knowledge_base_name": KB}).json()["data"]
    assert details["files"][0]["loader"] == "FaqLoader" and details["files"][0]["chunk_count"] == 4


def test_the_bench_faq_set_is_consistent() -> None:
    from pathlib import Path

    from server.loaders.faq import read_stored

    data = Path(__file__).resolve().parents[1] / "bench" / "data" / "faq"
    entries = read_stored(data / "faq.jsonl", "faq.jsonl")
    queries = [json.loads(line) for line in (data / "queries.jsonl").read_text("utf-8").splitlines() if line]
    ids = {entry.id for entry in entries}
    stored = {question for entry in entries for question in entry.questions}
    assert len(entries) == 40 and len(queries) >= 110
    assert all(query["faq_id"] is None or query["faq_id"] in ids for query in queries)
    assert not any(query["query"] in stored for query in queries)  # paraphrases, not copies
