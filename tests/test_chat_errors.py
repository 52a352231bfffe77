"""Error mapping for model endpoints, against a small local stub that misbehaves on purpose (no real model)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port, make_settings
from fastapi.testclient import TestClient
from http_stub import StubHandler, serving

from server.api.app import create_app

GOOD_CHUNK = {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "好"}}]}
SECRET = "sk-never-shown-42"


class Misbehaving(StubHandler):
    """/<mode>/v1/chat/completions answers according to <mode>."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        mode = self.path.strip("/").split("/")[0]
        sse = "text/event-stream"
        if mode == "plain":
            self._send(200, "text/plain", b"hello, I am not an API")
        elif mode == "notjson":
            self._send(200, sse, b"data: {broken\n\n")
        elif mode == "midway":
            self._send(200, sse, f"data: {json.dumps(GOOD_CHUNK)}\n\ndata: <html>oops\n\n".encode())
        elif mode == "nochoices":
            self._send(200, sse, b'data: {"id": "x"}\n\n')
        elif mode == "busy":
            self._send(503, "application/json", b'{"code": 503, "msg": "no room while other models answer"}')
        elif mode == "full":
            self._send(507, "application/json", b'{"code": 507, "msg": "larger than the whole GPU budget"}')
        elif mode == "auth":
            self._send(401, "application/json", json.dumps({"error": {"message": f"bad key {SECRET}"}}).encode())
        else:
            self._send(500, "application/json", b'{"error": {"message": "CUDA out of memory"}}')


@pytest.fixture(scope="module")
def stub() -> Iterator[str]:
    with serving(Misbehaving) as url:
        yield url


@pytest.fixture
def api(tmp_path: Path, stub: str) -> Iterator[TestClient]:
    modes = ("plain", "notjson", "midway", "nochoices", "auth", "crash", "busy", "full")
    llms: dict[str, Any] = {
        mode: {"engine": "openai", "base_url": f"{stub}/{mode}/v1", "api_key": SECRET} for mode in modes
    }
    llms["down"] = {"engine": "openai", "base_url": f"http://u:{SECRET}@127.0.0.1:{free_port()}/v1", "api_key": SECRET}
    llms["local"] = {"engine": "transformers", "path": str(tmp_path)}
    settings = make_settings(tmp_path, llm_models=llms, default_llm="down", llm_worker={"port": free_port()})
    with TestClient(create_app(settings)) as client:
        yield client


def chat(client: TestClient, model: str, stream: bool = False) -> Any:
    return client.post("/chat/chat", json={"query": "你好", "model_name": model, "stream": stream})


@pytest.mark.parametrize(
    ("model", "status", "fragment"),
    [
        ("down", 503, "could not reach the LLM endpoint http://u:***@127.0.0.1:"),
        ("local", 503, "python -m server.llm_worker"),
        ("plain", 502, "not an event stream: 'hello, I am not an API'"),
        ("notjson", 502, "not JSON"),
        ("nochoices", 502, "no 'choices'"),
        ("auth", 502, "check api_key of model 'auth'"),
        ("crash", 502, 'HTTP 500: {"error": {"message": "CUDA out of memory"}}'),
        ("busy", 503, "no room while other models answer"),  # our worker's budget refusals keep their status
        ("full", 507, "larger than the whole GPU budget"),
        ("midway", 502, "not JSON: '<html>oops'"),
    ],
)
def test_endpoint_failures_become_502_or_503(api: TestClient, model: str, status: int, fragment: str) -> None:
    for stream in (False, True) if model != "midway" else (False,):
        response = chat(api, model, stream)
        assert response.status_code == status, response.text
        assert response.json()["code"] == status and fragment in response.json()["msg"]
        assert SECRET not in response.text
    assert api.get("/health").status_code == 200


def test_failure_midway_ends_the_stream_with_an_error_event(api: TestClient) -> None:
    response = chat(api, "midway", stream=True)
    assert response.status_code == 200
    events = [json.loads(part[6:]) for part in response.text.split("\r\n\r\n") if part]
    assert events[0]["text"] == "好" and events[-1]["code"] == 502 and "not JSON" in events[-1]["msg"]


def test_kb_chat_and_openai_route_map_the_same_errors(api: TestClient) -> None:
    assert api.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": "kb"}).status_code == 200
    body = {"query": "你好", "knowledge_base_name": "kb", "model_name": "crash", "stream": True}
    assert api.post("/chat/knowledge_base_chat", json=body).status_code == 502
    openai_body = {"model": "down", "messages": [{"role": "user", "content": "hi"}]}
    response = api.post("/v1/chat/completions", json=openai_body)
    assert response.status_code == 503 and SECRET not in response.text
