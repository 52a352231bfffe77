"""Agent chat: the tool-calling loop against a local stub of an OpenAI-compatible endpoint, and the tools."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_settings
from fastapi.testclient import TestClient
from http_stub import StubHandler, serving

from server.api.app import create_app
from server.chat.agent.calculator import calculate
from server.chat.agent.tools import ToolBox, calculator, current_datetime
from server.errors import InvalidInput

KB = "agent_kb"
REQUESTS: list[dict[str, Any]] = []


def _call(call_id: str, name: str, arguments: Any) -> dict[str, Any]:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": text}}


SCRIPTS: dict[str, list[dict[str, Any]]] = {
    "math": [_call("c1", "calculator", {"expression": "(3 + 4) * 6"}), _call("c2", "current_datetime", {})],
    "kb": [_call("k1", "search_knowledge_base", {"knowledge_base_name": KB, "query": "配置文件在哪里"})],
    "bad": [_call("b1", "calculator", "{not json"), _call("b2", "nope", {})],
    "loop": [_call("l1", "calculator", {"expression": "1 + 1"})],
    "many": [_call(f"m{n}", "calculator", {"expression": f"{n} * 2"}) for n in range(10)],
}


class Stub(StubHandler):
    """Asks for its script's tool calls first, then answers with the tool outputs it got back (or loops)."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        REQUESTS.append(body)
        if body["model"] == "no-tools":
            self._json(400, {"error": {"message": "tools are not supported by this model"}})
            return
        outputs = [m["content"] for m in body["messages"] if m["role"] == "tool"]
        if outputs and body["model"] != "loop":
            message = {"role": "assistant", "content": "结果：" + " | ".join(outputs)}
        else:
            message = {"role": "assistant", "content": "我来算一下。", "tool_calls": SCRIPTS[body["model"]]}
        self._json(200, {"choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}]})

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        self._send(status, "application/json", json.dumps(payload, ensure_ascii=False).encode())


@pytest.fixture(scope="module")
def stub() -> Iterator[str]:
    with serving(Stub) as url:
        yield f"{url}/v1"


@pytest.fixture
def api(tmp_path: Path, stub: str) -> Iterator[TestClient]:
    models: dict[str, Any] = {name: {"engine": "openai", "base_url": stub, "model": name} for name in SCRIPTS}
    models["no-tools"] = {"engine": "openai", "base_url": stub, "model": "no-tools"}
    models["local"] = {"engine": "transformers", "path": str(tmp_path / "model")}
    with TestClient(create_app(make_settings(tmp_path, llm_models=models, default_llm="math"))) as client:
        yield client


def _events(response: Any) -> list[dict[str, Any]]:
    assert response.headers["content-type"].startswith("text/event-stream"), response.text
    return [json.loads(part[6:]) for part in response.text.split("\r\n\r\n") if part]


def test_tool_calls_stream_as_chatchat_events(api: TestClient) -> None:
    body = {"query": "(3+4)*6 等于多少？", "history": [], "stream": True, "model_name": None, "max_tokens": None}
    events = _events(api.post("/chat/agent_chat", json=body))
    assert events[0] == {"answer": "我来算一下。"}
    calc, date = events[1]["tools"], events[2]["tools"]
    assert calc[0] == "\n```\n" and "工具 / tool: calculator" in calc and "输出 / output: 42" in calc
    assert any(line.startswith("输出 / output: 20") for line in date)  # an ISO date of this century
    assert events[3]["final_answer"].startswith("结果：42 | ") and len(events) == 4
    sent = REQUESTS[-1]
    assert [spec["function"]["name"] for spec in sent["tools"]] == [
        "calculator",
        "current_datetime",
        "search_knowledge_base",
    ]
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "tool", "tool"]
    assert sent["messages"][1]["tool_calls"][0]["function"]["name"] == "calculator"


def test_not_streamed_is_one_event(api: TestClient) -> None:
    [event] = _events(api.post("/chat/agent_chat", json={"query": "算一下", "model_name": "math"}))
    assert event["final_answer"].startswith("结果：42") and "calculator" in event["answer"]


def test_kb_search_tool(api: TestClient) -> None:
    api.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB})
    parts = [("files", ("config.md", "## 配置\n配置文件在 configs 目录。".encode(), "text/plain"))]
    api.post("/knowledge_base/upload_docs", data={"knowledge_base_name": KB}, files=parts)
    events = _events(api.post("/chat/agent_chat", json={"query": "配置文件在哪里", "model_name": "kb", "stream": True}))
    assert "(config.md) ## 配置\n配置文件在 configs 目录。" in events[-1]["final_answer"]
    assert KB in REQUESTS[-1]["tools"][2]["function"]["description"]  # the model is told which KBs exist


def test_bad_calls_go_back_to_the_model(api: TestClient) -> None:
    events = _events(api.post("/chat/agent_chat", json={"query": "x", "model_name": "bad", "stream": True}))
    assert "状态 / status: 失败 failed" in events[1]["tools"] and "not JSON" in "".join(events[1]["tools"])
    assert "no tool named 'nope'" in "".join(events[2]["tools"])
    assert events[-1]["final_answer"].startswith("结果：error: ")


def test_a_looping_model_is_stopped(api: TestClient) -> None:
    events = _events(api.post("/chat/agent_chat", json={"query": "x", "model_name": "loop", "stream": True}))
    assert "6" in events[-1]["final_answer"] and sum("tools" in e for e in events) == 6


def test_calls_per_turn_are_bounded(api: TestClient) -> None:
    events = _events(api.post("/chat/agent_chat", json={"query": "x", "model_name": "many", "stream": True}))
    tools = ["".join(e["tools"]) for e in events if "tools" in e]
    assert len(tools) == 10 and all("成功" in t for t in tools[:8]) and all("at most 8" in t for t in tools[8:])


@pytest.mark.parametrize(
    ("model", "status", "fragment"),
    [("no-tools", 422, "cannot call tools"), ("local", 422, "does not support tool calling"), ("x", 404, "unknown")],
)
def test_models_without_tools(api: TestClient, model: str, status: int, fragment: str) -> None:
    response = api.post("/chat/agent_chat", json={"query": "x", "model_name": model, "stream": True})
    assert response.status_code == status and fragment in response.json()["msg"], response.text


def test_without_any_model_is_503(client: TestClient) -> None:
    response = client.post("/chat/agent_chat", json={"query": "你好", "model_name": "chatglm3-6b", "stream": True})
    assert response.status_code == 503 and "llm_models" in response.json()["msg"]


@pytest.mark.parametrize(
    ("expression", "value"),
    [("(3 + 4) * 6", "42"), ("2 ** 10 / 4", "256"), ("sqrt(2)", "1.4142135623730951"), ("7 // 2 + 7 % 2", "4"),
     ("-pi", str(-3.141592653589793)), ("3×4÷2", "6"), ("2^3", "8")],
)  # fmt: skip
def test_calculator(expression: str, value: str) -> None:
    assert calculate(expression) == value


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [("__import__('os')", "not allowed"), ("().__class__", "not allowed"), ("9 ** 9 ** 9", "exponents above"),
     ("1 / 0", "cannot be computed"), ("10 ** 400", "too large"), ("1 +", "not an arithmetic"), ("", "1 to 500"),
     ("x" * 501, "1 to 500"), ("round(1.5, ndigits=1)", "positional"),
     ("(" * 240 + "1" + ")" * 240, "nested too deeply")],
)  # fmt: skip
def test_calculator_refuses(expression: str, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        calculate(expression)


def test_date_tool_and_arguments() -> None:
    fixed = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    tools = ToolBox([calculator(), current_datetime(lambda: fixed)], list)
    assert tools.run("current_datetime", '{"timezone": "Asia/Shanghai"}') == (
        "2026-01-02T11:04:05+08:00 (Friday, Asia/Shanghai)"
    )
    with pytest.raises(InvalidInput, match="unknown time zone"):
        tools.run("current_datetime", '{"timezone": "Mars/Base"}')
    with pytest.raises(InvalidInput, match="must be a JSON object"):
        tools.run("calculator", "[1]")
    with pytest.raises(InvalidInput, match="'expression' must be a non-empty string"):
        tools.run("calculator", "{}")
