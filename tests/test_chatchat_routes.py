"""The Chatchat 0.2 routes beyond knowledge bases: search-engine chat, /other/completion, /llm_model/stop.

A local HTTP stub plays the web search engines (SearXNG's and Bing's JSON) and an OpenAI-compatible chat
endpoint, so everything runs offline.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import free_port, make_settings
from fastapi.testclient import TestClient
from http_stub import StubHandler, serving

from server.api.app import create_app
from server.chat.events import NO_LLM_ANSWER

SEARXNG = {
    "query": "知库",
    "results": [
        {"url": "https://example.org/zhiku", "title": "知库介绍", "content": "知库是一个本地知识库问答应用。"},
        {"url": "https://example.org/faq", "title": "FAQ", "content": "Answers to common questions."},
        {"url": "https://example.org/third", "title": "Third", "content": "A third page."},
    ],
}
DUCKDUCKGO = {
    "Heading": "知库",
    "AbstractText": "知库是本地知识库问答应用。",
    "AbstractURL": "https://example.net/zhiku",
    "RelatedTopics": [
        {"FirstURL": "https://example.net/a", "Text": "FAISS - a vector index library"},
        {"Name": "Group", "Topics": [{"FirstURL": "https://example.net/b", "Text": "Milvus - a vector database"}]},
    ],
}
BING = {"webPages": {"value": [{"name": "Bing 结果", "url": "https://example.com/b", "snippet": "来自必应的摘要。"}]}}
SEEN: list[dict[str, Any]] = []


class Stub(StubHandler):
    def do_GET(self) -> None:
        url = urlsplit(self.path)
        SEEN.append(
            {"path": url.path, "query": parse_qs(url.query), "key": self.headers.get("Ocp-Apim-Subscription-Key")}
        )
        if url.path == "/searx/search":
            self._send(200, "application/json", json.dumps(SEARXNG).encode())
        elif url.path == "/ddg":
            self._send(200, "application/x-javascript", json.dumps(DUCKDUCKGO).encode())
        elif url.path == "/bing":
            self._send(200, "application/json", json.dumps(BING).encode())
        else:
            self._send(200, "text/html", b"<html>search page</html>")

    def do_POST(self) -> None:
        SEEN.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        pieces = ["根据搜索结果，", "知库是本地应用 [1]。\n第二行"]
        events = [{"choices": [{"delta": {"content": piece}, "finish_reason": None}]} for piece in pieces]
        body = "".join(f"data: {json.dumps(event)}\n\n" for event in events) + "data: [DONE]\n\n"
        self._send(200, "text/event-stream", body.encode())


@pytest.fixture(scope="module")
def stub() -> Iterator[str]:
    with serving(Stub) as url:
        yield url


def _app(tmp_path: Path, stub: str, *, llm: bool) -> TestClient:
    engines = {
        "searxng": {"kind": "searxng", "url": f"{stub}/searx"},
        "bing": {"kind": "bing", "url": f"{stub}/bing", "api_key": "bing-secret"},
        "duckduckgo": {"kind": "duckduckgo", "url": f"{stub}/ddg"},
        "broken": {"kind": "searxng", "url": f"{stub}/html"},
        "down": {"kind": "searxng", "url": f"http://127.0.0.1:{free_port()}"},
    }
    models = {"cloud": {"engine": "openai", "base_url": f"{stub}/v1", "model": "gpt"}} if llm else {}
    settings = make_settings(
        tmp_path,
        web_search={"engines": engines, "default_engine": "searxng", "top_k": 2},
        llm_models=models,
        default_llm="cloud" if llm else None,
    )
    return TestClient(create_app(settings))


def _events(response: Any) -> list[dict[str, Any]]:
    assert response.headers["content-type"].startswith("text/event-stream"), response.text
    return [json.loads(part[6:]) for part in response.text.split("\r\n\r\n") if part]


def test_without_engines_both_routes_name_the_setting(client: TestClient) -> None:
    listed = client.post("/server/list_search_engines")
    assert listed.status_code == 200 and listed.json()["data"] == [] and "web_search.engines" in listed.json()["msg"]
    chat = client.post("/chat/search_engine_chat", json={"query": "知库", "search_engine_name": "duckduckgo"})
    assert chat.status_code == 503 and "web_search.engines" in chat.json()["msg"]


def test_search_engine_chat_without_llm_cites_the_pages(tmp_path: Path, stub: str) -> None:
    with _app(tmp_path, stub, llm=False) as client:
        assert client.post("/server/list_search_engines").json()["data"] == [
            "searxng",
            "bing",
            "broken",
            "down",
            "duckduckgo",
        ]
        body = {"query": "知库是什么", "search_engine_name": "searxng", "stream": True, "history": None}
        events = _events(client.post("/chat/search_engine_chat", json=body))
        assert events[0] == {"answer": NO_LLM_ANSWER}
        docs = events[-1]["docs"]
        assert len(docs) == 2  # web_search.top_k
        assert docs[0] == "出处 [1] [知库介绍](https://example.org/zhiku)\n\n知库介绍\n知库是一个本地知识库问答应用。"
        assert SEEN[-1]["query"] == {"q": ["知库是什么"], "format": ["json"]}
        bing = _events(client.post("/chat/search_engine_chat", json={**body, "search_engine_name": "bing", "top_k": 5}))
        assert bing[-1]["docs"] == ["出处 [1] [Bing 结果](https://example.com/b)\n\nBing 结果\n来自必应的摘要。"]
        assert SEEN[-1]["key"] == "bing-secret" and SEEN[-1]["query"]["count"] == ["5"]
        ddg = _events(client.post("/chat/search_engine_chat", json={**body, "search_engine_name": "duckduckgo"}))
        assert [doc.split("\n")[0] for doc in ddg[-1]["docs"]] == [
            "出处 [1] [知库](https://example.net/zhiku)",
            "出处 [2] [FAISS](https://example.net/a)",
        ]


@pytest.mark.parametrize(
    ("engine", "status", "fragment"),
    [("nope", 404, "configured: searxng, bing"), ("broken", 502, "json format"), ("down", 503, "could not reach")],
)
def test_search_engine_failures(tmp_path: Path, stub: str, engine: str, status: int, fragment: str) -> None:
    with _app(tmp_path, stub, llm=False) as client:
        response = client.post("/chat/search_engine_chat", json={"query": "q", "search_engine_name": engine})
        assert response.status_code == status and fragment in response.json()["msg"], response.text
        assert "bing-secret" not in response.text


def test_search_engine_chat_answers_from_the_results(tmp_path: Path, stub: str) -> None:
    with _app(tmp_path, stub, llm=True) as client:
        body = {"query": "知库是什么", "search_engine_name": "searxng", "stream": False, "model_name": None}
        [event] = _events(client.post("/chat/search_engine_chat", json=body))
        assert event["answer"] == "根据搜索结果，知库是本地应用 [1]。\n第二行" and len(event["docs"]) == 2
        prompt = SEEN[-1]["messages"][-1]["content"]
        assert "[1] 知库介绍\n知库是一个本地知识库问答应用。" in prompt and "<问题>知库是什么</问题>" in prompt


def test_completion_streams_plain_text_events(tmp_path: Path, stub: str) -> None:
    with _app(tmp_path, stub, llm=True) as client:
        body = {"query": "恼羞成怒", "stream": True, "echo": True, "max_tokens": None, "temperature": 0.2}
        response = client.post("/other/completion", json=body)
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.text == (
            "data: 恼羞成怒\r\n\r\ndata: 根据搜索结果，\r\n\r\ndata: 知库是本地应用 [1]。\r\ndata: 第二行\r\n\r\n"
        )
        assert SEEN[-1]["messages"] == [{"role": "user", "content": "恼羞成怒"}] and SEEN[-1]["temperature"] == 0.2
        whole = client.post("/other/completion", json={"query": "恼羞成怒"})
        assert whole.text == "data: 根据搜索结果，知库是本地应用 [1]。\r\ndata: 第二行\r\n\r\n"
        assert SEEN[-1]["max_tokens"] == 1024  # Chatchat's default


def test_completion_without_llm_is_503(client: TestClient) -> None:
    response = client.post("/other/completion", json={"query": "你好", "model_name": None})
    assert response.status_code == 503 and "llm_models" in response.json()["msg"]


def test_stop_says_why_a_model_cannot_be_stopped(tmp_path: Path, stub: str, client: TestClient) -> None:
    body = {"model_name": "cloud", "controller_address": None}
    assert client.post("/llm_model/stop", json=body).status_code == 503  # no model configured at all
    with _app(tmp_path, stub, llm=True) as with_llm:
        remote = with_llm.post("/llm_model/stop", json=body)
        assert remote.status_code == 422 and "online model" in remote.json()["msg"]  # not ours to unload
        unknown = with_llm.post("/llm_model/stop", json={**body, "model_name": "nope"})
        assert unknown.status_code == 404
