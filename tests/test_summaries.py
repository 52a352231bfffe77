"""KB summaries (kb_summary_api): map-reduce over a file's chunks with a stub LLM, the summary index, its use in
KB chat, and the 503 without a model."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_settings
from fastapi.testclient import TestClient
from http_stub import StubHandler, serving

from server.api.app import create_app
from server.chat.summaries import _batches

KB = "摘要库"
LONG = "\n\n".join(
    f"第{n}段：知库的第{n}个功能说明，介绍上传、检索和问答的细节，以及相关的配置项和使用方法。" for n in range(80)
)
SHORT = "安装方法：运行 make start 即可。"
PROMPTS: list[str] = []


class Stub(StubHandler):
    """An OpenAI-style streaming endpoint: a map prompt gets "部分摘要：<first words>", a reduce prompt
    "总摘要：<n> 部分", anything else "回答"."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][-1]["content"]
        PROMPTS.append(prompt)
        if "<各部分摘要>" in prompt:
            text = f"总摘要：{prompt.count('部分摘要：')} 部分"
        elif "<文档>" in prompt:
            match = re.search(r"<文档>\n(\S{0,12})", prompt)
            text = f"部分摘要：{match.group(1) if match else ''}"
        else:
            text = "回答"
        event = {"choices": [{"delta": {"content": text}, "finish_reason": "stop"}]}
        data = f"data: {json.dumps(event, ensure_ascii=False)}\n\ndata: [DONE]\n\n".encode()
        self._send(200, "text/event-stream", data)


@pytest.fixture(scope="module")
def stub() -> Iterator[str]:
    with serving(Stub) as url:
        yield f"{url}/v1"


@pytest.fixture
def api(tmp_path: Path, stub: str) -> Iterator[TestClient]:
    models = {"cloud": {"engine": "openai", "base_url": stub, "model": "gpt"}}
    with TestClient(create_app(make_settings(tmp_path, llm_models=models, default_llm="cloud"))) as client:
        client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB})
        files = [("files", ("long.txt", LONG.encode())), ("files", ("short.txt", SHORT.encode()))]
        assert (
            client.post("/knowledge_base/upload_docs", data={"knowledge_base_name": KB}, files=files).status_code == 200
        )
        yield client


def _events(response: Any) -> list[dict[str, Any]]:
    assert response.headers["content-type"].startswith("text/event-stream"), response.text
    return [json.loads(part[6:]) for part in response.text.split("\r\n\r\n") if part]


def test_a_file_is_summarised_map_reduce(api: TestClient) -> None:
    PROMPTS.clear()
    body = {"knowledge_base_name": KB, "file_name": "long.txt", "file_description": "产品手册", "model_name": None}
    [event] = _events(api.post("/knowledge_base/kb_summary_api/summary_file_to_vector_store", json=body))
    maps = [p for p in PROMPTS if "<文档>" in p]
    assert len(maps) >= 2 and all("产品手册" in p for p in PROMPTS)  # several map calls, then a reduce
    assert event == {
        "code": 200,
        "msg": "long.txt summarised",
        "doc": "long.txt",
        "summary": f"总摘要：{len(maps)} 部分",
    }
    assert maps[0].split("<文档>\n", 1)[1].startswith("第0段")  # the chunks in file order


def test_summaries_are_searched_and_used_by_kb_chat(api: TestClient) -> None:
    api.post("/knowledge_base/kb_summary_api/recreate_summary_vector_store", json={"knowledge_base_name": KB})
    found = api.post(
        "/knowledge_base/kb_summary_api/search_summaries", json={"query": "安装", "knowledge_base_name": KB}
    )
    hits = found.json()
    assert {h["metadata"]["source"] for h in hits} == {"long.txt", "short.txt"}
    assert all(h["metadata"]["summary"] is True and 0.0 <= h["score"] <= 1.0 for h in hits)
    PROMPTS.clear()
    chat = {"query": "这份文档讲了什么", "knowledge_base_name": KB, "with_summaries": True, "top_k": 1}
    [answer] = _events(api.post("/chat/knowledge_base_chat", json=chat))
    assert answer["answer"] == "回答" and len(answer["docs"]) == 2
    assert "[1] 总摘要：" in PROMPTS[-1] or "[1] 部分摘要：" in PROMPTS[-1]  # the closest summary comes first
    several = api.post("/chat/knowledge_base_chat", json={**chat, "knowledge_base_name": [KB, KB]})
    assert several.status_code == 422 and "one knowledge_base_name" in several.json()["msg"]


def test_recreate_streams_one_event_per_file(api: TestClient) -> None:
    events = _events(
        api.post("/knowledge_base/kb_summary_api/recreate_summary_vector_store", json={"knowledge_base_name": KB})
    )
    assert [(e["code"], e["finished"], e["total"], e["doc"]) for e in events] == [
        (200, 1, 2, "long.txt"),
        (200, 2, 2, "short.txt"),
    ]
    api.post("/knowledge_base/delete_docs", json={"knowledge_base_name": KB, "file_names": ["short.txt"]})
    found = api.post(
        "/knowledge_base/kb_summary_api/search_summaries", json={"query": "安装", "knowledge_base_name": KB}
    )
    assert [h["metadata"]["source"] for h in found.json()] == ["long.txt"]  # a deleted file's summary is gone


def test_chunks_by_id(api: TestClient) -> None:
    chunks = api.post("/knowledge_base/search_docs", json={"knowledge_base_name": KB, "file_name": "short.txt"}).json()
    body = {"knowledge_base_name": KB, "doc_ids": [c["id"] for c in chunks]}
    reply = api.post("/knowledge_base/kb_summary_api/summary_doc_ids_to_vector_store", json=body).json()
    assert reply["code"] == 200 and reply["data"]["summarize"][0]["page_content"] == "部分摘要：安装方法：运行"
    missing = api.post(
        "/knowledge_base/kb_summary_api/summary_doc_ids_to_vector_store", json={**body, "doc_ids": ["x"]}
    )
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"knowledge_base_name": KB, "file_name": "nope.txt"}, 404),
        ({"knowledge_base_name": "无", "file_name": "a"}, 404),
    ],
)
def test_unknown_kb_or_file(api: TestClient, body: dict[str, Any], status: int) -> None:
    response = api.post("/knowledge_base/kb_summary_api/summary_file_to_vector_store", json=body)
    assert response.status_code == status and response.headers["content-type"].startswith("application/json")


def test_without_a_model_is_503(client: TestClient) -> None:
    client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB})
    for route, body in [
        ("summary_file_to_vector_store", {"knowledge_base_name": KB, "file_name": "a.txt"}),
        ("summary_doc_ids_to_vector_store", {"knowledge_base_name": KB, "doc_ids": ["x"]}),
        ("recreate_summary_vector_store", {"knowledge_base_name": KB}),
    ]:
        response = client.post(f"/knowledge_base/kb_summary_api/{route}", json=body)
        assert response.status_code == 503 and "llm_models" in response.json()["msg"], route


def test_batches_always_shrink() -> None:
    assert _batches(["a" * 10] * 5, 25, min_items=1) == ["a" * 10 + "\n\n" + "a" * 10] * 2 + ["a" * 10]
    assert len(_batches(["x" * 100] * 5, 10, min_items=2)) == 2  # over-long texts still pair up
