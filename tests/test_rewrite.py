"""Follow-up questions rewritten before retrieval, against a stub OpenAI endpoint whose rewrite is known: the
rewritten question is what is searched (and FAQ-matched), it is shown with the docs, and bad rewrites are not used."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_settings
from fastapi.testclient import TestClient
from http_stub import StubHandler, serving
from test_chat_api import events

from server.api.app import create_app
from server.chat.rewrite import cleaned, render_history

KB = "改写库"
REWRITE = {"text": "改写后的问题：“chunk_overlap 的默认值是多少？”"}
PROMPTS: list[str] = []
HISTORY = [
    {"role": "user", "content": "chunk_overlap 是什么？"},
    {"role": "assistant", "content": "chunk_overlap 是相邻分块重叠的长度。"},
]


class Stub(StubHandler):
    """A rewrite prompt gets REWRITE["text"]; any other prompt gets "回答"."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][-1]["content"]
        PROMPTS.append(prompt)
        text = REWRITE["text"] if "<后续问题>" in prompt else "回答"
        event = {"choices": [{"delta": {"content": text}, "finish_reason": "stop"}]}
        self._send(
            200, "text/event-stream", f"data: {json.dumps(event, ensure_ascii=False)}\n\ndata: [DONE]\n\n".encode()
        )


@pytest.fixture(scope="module")
def stub() -> Iterator[str]:
    with serving(Stub) as url:
        yield f"{url}/v1"


@pytest.fixture
def api(tmp_path: Path, stub: str) -> Iterator[TestClient]:
    models = {"cloud": {"engine": "openai", "base_url": stub, "model": "gpt"}}
    settings = make_settings(tmp_path, llm_models=models, default_llm="cloud", kb={"default_embed_model": "hash",
                             "search_mode": "keyword"})  # fmt: skip
    with TestClient(create_app(settings)) as client:
        client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB})
        files = [
            ("files", ("overlap.txt", "chunk_overlap 的默认值是 50 个字符。".encode())),
            ("files", ("port.txt", "API 端口的默认值是 7861。".encode())),
        ]
        assert client.post("/knowledge_base/upload_docs", data={"knowledge_base_name": KB}, files=files).is_success
        PROMPTS.clear()
        yield client


def _ask(client: TestClient, **extra: Any) -> list[dict[str, Any]]:
    body = {"query": "那它的默认值呢？", "knowledge_base_name": KB, "history": HISTORY, "top_k": 1, **extra}
    return events(client.post("/chat/knowledge_base_chat", json=body))


def test_a_follow_up_is_searched_as_the_standalone_question(api: TestClient) -> None:
    got = _ask(api)
    assert got[-1]["rewritten_query"] == "chunk_overlap 的默认值是多少？"
    assert "overlap.txt" in got[-1]["docs"][0]
    rewrite_prompt, answer_prompt = PROMPTS
    assert "chunk_overlap 是相邻分块重叠的长度。" in rewrite_prompt and "那它的默认值呢？" in rewrite_prompt
    assert "chunk_overlap 的默认值是 50 个字符" in answer_prompt and "那它的默认值呢？" in answer_prompt


def test_without_history_or_when_turned_off_nothing_is_rewritten(api: TestClient) -> None:
    assert "rewritten_query" not in _ask(api, history=[])[-1]
    assert "rewritten_query" not in _ask(api, rewrite_query=False)[-1]
    assert all("<后续问题>" not in prompt for prompt in PROMPTS)


def test_a_rewrite_that_is_not_a_question_is_not_used(api: TestClient) -> None:
    REWRITE["text"] = "\n \n"
    try:
        assert "rewritten_query" not in _ask(api)[-1]
    finally:
        REWRITE["text"] = "改写后的问题：“chunk_overlap 的默认值是多少？”"


def test_the_rewritten_question_can_hit_a_faq_directly(api: TestClient) -> None:
    faq = "question,answer\nchunk_overlap 的默认值是多少？,默认 50。\n".encode()
    files = {"file": ("faq.csv", faq, "text/csv")}
    assert api.post("/knowledge_base/import_faq", data={"knowledge_base_name": KB}, files=files).status_code == 201
    got = _ask(api, stream=False)
    assert got[0]["answer"] == "默认 50。" and got[0]["direct_answer"]["exact"] is True
    assert got[0]["rewritten_query"] == "chunk_overlap 的默认值是多少？"


def test_openai_route_rewrites_too(api: TestClient) -> None:
    messages = [*HISTORY, {"role": "user", "content": "那它的默认值呢？"}]
    body = {"model": "cloud", "messages": messages, "knowledge_base_name": KB, "top_k": 1}
    answer = api.post("/v1/chat/completions", json=body).json()
    assert "overlap.txt" in answer["choices"][0]["message"]["content"]


def test_cleaning_and_history_rendering() -> None:
    assert cleaned("Standalone question: 'What is X?'\nextra") == "What is X?"
    assert cleaned("\n  独立问题：「它是什么」") == "它是什么"
    long_answer = {"role": "assistant", "content": "长" * 1000}
    shown = render_history([{"role": "user", "content": "a"}, long_answer] * 5)
    assert shown.count("\n") == 5 and len(shown) < 2000
