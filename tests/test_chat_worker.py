"""Chat end to end: the API over a real LLM worker process serving the tiny random model.

The model's words are random: these tests check the flows (streaming, saved conversations, retrieval and
citations, temporary files, the remote-endpoint path), never the content.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from chat_worker import PtySession, api_models, running_worker
from conftest import LiveServer, make_settings
from tiny_llm import tiny_model_dir  # noqa: F401  (session fixture)

from configs import Settings
from server.chat.conversations import ConversationStore
from server.db.engine import make_engine, make_session_factory
from server.db.models import Message

pytestmark = pytest.mark.integration

Worker = tuple[str, int, Path]
KB = "手册"
GUIDE = "安装方法：运行 make start 即可。然后打开浏览器访问接口文档。".encode()
CONFIG = "# 手册\n\n## 配置\n配置文件在 configs 目录，可以用环境变量覆盖。".encode()


@pytest.fixture(scope="module")
def worker(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:  # noqa: F811
    with running_worker(tiny_model_dir, tmp_path_factory.mktemp("worker")) as (url, port):
        yield url, port, tiny_model_dir


@pytest.fixture(scope="module")
def api(worker: Worker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings]]:
    url, port, tiny = worker
    folder = tmp_path_factory.mktemp("api")
    settings = make_settings(folder, llm_models=api_models(tiny, url), default_llm="tiny",
                             llm_worker={"port": port})  # fmt: skip
    with LiveServer(settings) as server:
        http = httpx.Client(base_url=server.url, timeout=60)
        assert http.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB}).status_code == 200
        files = [("files", ("docs/guide.txt", GUIDE)), ("files", ("config.md", CONFIG))]
        assert http.post("/knowledge_base/upload_docs", data={"knowledge_base_name": KB}, files=files).is_success
        yield server.url, settings


def post_events(url: str, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    events = []
    with httpx.stream("POST", f"{url}{path}", json=body, timeout=60) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    return events


def test_chat_streams_and_saves_the_conversation(api: tuple[str, Settings]) -> None:
    url, settings = api
    first = post_events(url, "/chat/chat", {"query": "你好", "stream": True, "max_tokens": 8})
    assert first and all(set(event) == {"text", "message_id", "conversation_id"} for event in first)
    assert len({event["message_id"] for event in first}) == 1
    conversation = first[0]["conversation_id"]
    body = {"query": "再说一遍", "conversation_id": conversation, "max_tokens": 8, "model_name": "remote"}
    second = post_events(url, "/chat/chat", body)
    assert len(second) == 1 and second[0]["conversation_id"] == conversation
    store = ConversationStore(make_session_factory(make_engine(settings.sqlalchemy_url)))
    history = store.history(conversation)
    assert [m["role"] for m in history] == ["user", "assistant", "user", "assistant"]
    assert history[0]["content"] == "你好" and history[1]["content"] == "".join(e["text"] for e in first)
    assert history[3]["content"] == second[0]["text"]
    assert store.history(conversation, 1)[0]["content"] == "再说一遍"
    feedback = httpx.post(f"{url}/chat/feedback", json={"message_id": second[0]["message_id"], "score": 90,
                                                          "reason": "好"})  # fmt: skip
    assert feedback.status_code == 200
    with make_session_factory(make_engine(settings.sqlalchemy_url))() as session:
        message = session.get(Message, second[0]["message_id"])
        assert message is not None and message.feedback_score == 90 and message.meta["model_name"] == "remote"


def test_kb_chat_cites_its_sources(api: tuple[str, Settings]) -> None:
    url, _ = api
    body = {"query": "配置文件在哪里", "knowledge_base_name": KB, "stream": True, "max_tokens": 8, "top_k": 2}
    events = post_events(url, "/chat/knowledge_base_chat", body)
    assert all(set(event) == {"answer"} for event in events[:-1]) and len(events) >= 2
    docs = events[-1]["docs"]
    assert len(docs) == 2 and all(doc.startswith(f"出处 [{n}] [") for n, doc in enumerate(docs, start=1))
    assert f"({url}/knowledge_base/download_doc?knowledge_base_name=%E6%89%8B%E5%86%8C&file_name=" in docs[0]
    whole = post_events(url, "/chat/knowledge_base_chat", {**body, "stream": False})
    assert len(whole) == 1 and set(whole[0]) == {"answer", "docs"} and whole[0]["answer"]


def test_kb_chat_has_the_model_rewrite_a_follow_up_before_searching(
    api: tuple[str, Settings], caplog: pytest.LogCaptureFixture
) -> None:
    """The random model's rewrite is nonsense (often nothing at temperature 0: then the question is searched as
    asked), but the real worker is asked for it first, and a rewrite that came back is what the events show."""
    url, _ = api
    history = [{"role": "user", "content": "配置文件在哪里"}, {"role": "assistant", "content": "在 configs 目录。"}]
    body = {"query": "那它能覆盖吗", "knowledge_base_name": KB, "history": history, "max_tokens": 8, "top_k": 2}
    with caplog.at_level(logging.DEBUG, logger="server.chat.rewrite"):
        events = post_events(url, "/chat/knowledge_base_chat", body)
    asked = [record.getMessage() for record in caplog.records if record.name == "server.chat.rewrite"]
    assert len(asked) == 1 and "那它能覆盖吗" in asked[0] and len(events[-1]["docs"]) == 2
    rewritten = events[-1].get("rewritten_query")
    assert rewritten is None or (rewritten != body["query"] and "\n" not in rewritten)
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="server.chat.rewrite"):
        plain = post_events(url, "/chat/knowledge_base_chat", {**body, "rewrite_query": False})
        alone = post_events(url, "/chat/knowledge_base_chat", {**body, "history": []})  # nothing to resolve
    assert "rewritten_query" not in plain[-1] and "rewritten_query" not in alone[-1]
    assert not [record for record in caplog.records if record.name == "server.chat.rewrite"]


def test_file_chat(api: tuple[str, Settings]) -> None:
    url, _ = api
    files = [("files", ("notes.txt", "猫喜欢晒太阳。".encode()))]
    knowledge_id = httpx.post(f"{url}/knowledge_base/upload_temp_docs", files=files).json()["data"]["id"]
    body = {"query": "猫喜欢什么", "knowledge_id": knowledge_id, "stream": True, "max_tokens": 8}
    events = post_events(url, "/chat/file_chat", body)
    assert events[-1]["docs"][0].startswith("出处 [1] [notes.txt]") and "answer" in events[0]


def test_running_models(api: tuple[str, Settings]) -> None:
    url, _ = api
    running = httpx.post(f"{url}/llm_model/list_running_models").json()
    assert set(running["data"]) == {"tiny", "remote"} and running["msg"] == "success"
    assert "sk-remote-secret" not in json.dumps(running)


def test_openai_client_against_the_api_and_the_worker(api: tuple[str, Settings], worker: Worker) -> None:
    from openai import OpenAI

    url, _ = api
    client = OpenAI(base_url=f"{url}/v1", api_key="not-needed", max_retries=0)
    assert {"tiny", "remote", "hash"} <= {model.id for model in client.models.list()}
    hello = [{"role": "user", "content": "你好"}]
    completion = client.chat.completions.create(model="tiny", messages=hello, max_tokens=8)  # type: ignore[arg-type]
    assert completion.choices[0].message.role == "assistant" and completion.model == "tiny"
    assert completion.usage is not None and 0 < completion.usage.completion_tokens <= 8
    chunks = list(client.chat.completions.create(model="remote", messages=hello, max_tokens=8, stream=True,  # type: ignore[call-overload]
                                                 stream_options={"include_usage": True}))  # fmt: skip
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert any(chunk.choices and chunk.choices[0].finish_reason for chunk in chunks)
    kb = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "配置文件"}],  # type: ignore[arg-type]
                                        max_tokens=8, extra_body={"knowledge_base_name": KB, "top_k": 1})  # fmt: skip
    content = kb.choices[0].message.content or ""
    assert content.endswith("\n\n来源 / Sources:\n[1] config.md") or content.endswith("[1] docs/guide.txt")
    vectors = client.embeddings.create(model="hash", input=["你好", "世界"])
    assert len(vectors.data) == 2 and len(vectors.data[1].embedding) == 64
    direct = OpenAI(base_url=f"{worker[0]}/v1", api_key="x", max_retries=0)
    assert direct.chat.completions.create(model="tiny", messages=hello, max_tokens=4).choices  # type: ignore[arg-type]


def test_terminal_chat_streams_the_models_answer(api: tuple[str, Settings]) -> None:
    url, _ = api
    args = [sys.executable, "-m", "server.cli", "chat", "--api", url, "--api-key", "", "--model", "remote"]
    session = PtySession(args, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    session.expect("You: ")
    for question in ("你好", "继续"):
        session.send(question)
        answer = session.expect("You: ").split("Zhiku: ", 1)[1]
        assert answer.strip() and not answer.lstrip().startswith("[")
    session.send("stop")
    assert session.wait() == 0
