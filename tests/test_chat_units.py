"""Chat building blocks without servers: prompts, citations, URL masking, stream parsing, registry, stores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from configs.settings import LlmModelConfig, Settings
from server.bootstrap import Services, kb_defaults
from server.bootstrap_chat import PROMPT_TEMPLATES_FILE
from server.chat.citations import NOTHING_FOUND, markdown_citations, numbered_context, plain_sources
from server.chat.conversations import ConversationStore
from server.chat.direct_answers import DirectAnswers
from server.chat.llm_client import ChatParams, LlmClient, parse_event
from server.chat.models import LlmRegistry, mask_url
from server.chat.prompts import PLACEHOLDERS, PromptTemplates, load_prompt_templates
from server.chat.rewrite import QueryRewriter
from server.chat.service import ChatOptions, ChatService
from server.chat.temp_knowledge import TempKnowledgeStore
from server.errors import (
    ConfigError,
    LlmNotConfigured,
    LlmUpstreamError,
    MessageNotFound,
    PromptNotFound,
    TempKnowledgeNotFound,
    UnknownModel,
)
from server.knowledge_base.ingest import FilePreparer, SourceFile
from server.knowledge_base.params import ChunkParams
from server.knowledge_base.search import SearchResult

RESULTS = [
    SearchResult("a", "第一段", {"source": "手册/安装.pdf", "page": 3}, 0.9),
    SearchResult("b", "second", {"source": "b c.md"}, 0.5),
]


def test_shipped_templates_load_and_render() -> None:
    prompts = load_prompt_templates(PROMPT_TEMPLATES_FILE)
    for kind in ("llm_chat", "knowledge_base_chat", "file_chat", "empty"):
        assert {"default", "en"} <= set(prompts.names(kind))
    text = prompts.render("knowledge_base_chat", "default", context="[1] x", question="问？")
    assert "[1] x" in text and "问？" in text and "{{" not in text
    assert prompts.render("llm_chat", "default", input="你好") == "你好"
    with pytest.raises(PromptNotFound, match="available: default"):
        prompts.get("llm_chat", "nope")


@pytest.mark.parametrize(
    ("templates", "fragment"),
    [
        ({"llm_chat": {"default": "{{ context }}"}}, "llm_chat.default uses {{ context }}"),
        ({"llm_chat": {"x": "{{ input }}"}}, "needs a template named 'default'"),
        ({"llm_chat": {"default": "{{input}}"}, "nope_chat": {"default": ""}}, "unknown prompt type"),
    ],
)
def test_bad_templates_fail_at_start_up(templates: dict[str, Any], fragment: str) -> None:
    base = {kind: {"default": ""} for kind in PLACEHOLDERS}
    with pytest.raises(ConfigError, match=fragment.replace("{", r"\{").replace("}", r"\}").replace("(", r"\(")):
        PromptTemplates({**base, **templates})


def test_citations() -> None:
    assert numbered_context(RESULTS) == "[1] 第一段\n\n[2] second"
    docs = markdown_citations(RESULTS, "产品 库")
    link = "/knowledge_base/download_doc?knowledge_base_name=%E4%BA%A7%E5%93%81%20%E5%BA%93&file_name="
    assert docs[0].startswith(f"出处 [1] [手册/安装.pdf]({link}%E6%89%8B%E5%86%8C%2F%E5%AE%89%E8%A3%85.pdf) (page 3)")
    assert docs[0].endswith("\n\n第一段") and docs[1].startswith(f"出处 [2] [b c.md]({link}b%20c.md)\n\n")
    assert markdown_citations(RESULTS, None)[1].startswith("出处 [2] [b c.md]\n\n")
    assert markdown_citations([], "kb") == [NOTHING_FOUND]
    assert plain_sources(RESULTS) == "\n\n来源 / Sources:\n[1] 手册/安装.pdf (page 3)\n[2] b c.md"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
        ("https://bob:pw@api.example.com/v1", "https://bob:***@api.example.com/v1"),
        ("https://token@api.example.com/v1?key=abc&x=1", "https://***@api.example.com/v1?key=***&x=***"),
    ],
)
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def registry(default: str | None = "local") -> LlmRegistry:
    configs = {
        "local": LlmModelConfig(engine="transformers", path="/m"),
        "cloud": LlmModelConfig(engine="openai", base_url="https://api.x.com/v1/", model="gpt", api_key="sk-1"),
    }
    return LlmRegistry(configs, default, "http://127.0.0.1:20000/v1")


def test_registry_resolves_models() -> None:
    local = registry().resolve(None)
    assert (local.base_url, local.model, local.api_key) == ("http://127.0.0.1:20000/v1", "local", None)
    cloud = registry().resolve("cloud")
    assert (cloud.base_url, cloud.model, cloud.api_key) == ("https://api.x.com/v1", "gpt", "sk-1")
    assert "api_key" not in registry().public_config("cloud") and registry().public_config("local")["default"]
    with pytest.raises(UnknownModel, match="configured: cloud, local"):
        registry().resolve("nope")
    with pytest.raises(LlmNotConfigured, match="default_llm"):
        registry(None).resolve("")
    with pytest.raises(UnknownModel, match="default_llm 'gone'"):
        registry("gone").resolve(None)
    with pytest.raises(LlmNotConfigured, match="llm_models"):
        LlmRegistry({}, None, "http://w/v1").resolve("anything")


def test_parse_event() -> None:
    endpoint = registry().resolve("cloud")
    chunk = {"choices": [{"delta": {"content": "好"}, "finish_reason": None}]}
    assert parse_event(endpoint, f"data: {json.dumps(chunk)}") is not None
    assert parse_event(endpoint, ": keep-alive") is None and parse_event(endpoint, "") is None
    usage = parse_event(endpoint, 'data: {"choices": [], "usage": {"completion_tokens": 3}}')
    assert usage is not None and usage.usage == {"completion_tokens": 3}
    for bad in ("data: [1, 2]", 'data: {"error": {"message": "boom"}}', "data: nope"):
        with pytest.raises(LlmUpstreamError):
            parse_event(endpoint, bad)


def test_conversation_store(services: Services) -> None:
    store = ConversationStore(services.catalog.sessions)
    for number in range(3):
        store.save_message(message_id=f"m{number}", conversation_id="c1", chat_type="llm_chat",
                           query=f"q{number}", response=f"a{number}" if number else "", meta={})  # fmt: skip
    assert [m["content"] for m in store.history("c1")] == ["q0", "q1", "a1", "q2", "a2"]
    assert [m["content"] for m in store.history("c1", 1)] == ["q2", "a2"]
    assert store.history("c1", 0) == [] and store.history("other") == []
    store.feedback("m1", 0, "wrong")
    with pytest.raises(MessageNotFound):
        store.feedback("m9", 10, "")


def test_temp_knowledge_expires(tmp_path: Path, services: Services, settings: Settings) -> None:
    now = [0.0]
    preparer = FilePreparer(services.embeddings)
    temp = TempKnowledgeStore(
        services.embeddings, preparer, kb_defaults(settings), max_upload_bytes=1 << 20, ttl_s=60, clock=lambda: now[0]
    )
    (tmp_path / "a.txt").write_text("猫喜欢晒太阳。", encoding="utf-8")
    knowledge_id, failed = temp.add_files("", [SourceFile(tmp_path / "a.txt", "a.txt")], ChunkParams(100, 10))
    assert failed == {} and temp.search(knowledge_id, "猫", top_k=3, score_threshold=0.0)[0].metadata["source"]
    now[0] = 50.0
    temp.search(knowledge_id, "猫", top_k=1, score_threshold=0.0)  # use keeps it alive
    now[0] = 100.0
    assert temp.count() == 1
    now[0] = 200.0
    with pytest.raises(TempKnowledgeNotFound, match="expire 1 minutes"):
        temp.search(knowledge_id, "猫", top_k=1, score_threshold=0.0)
    assert temp.count() == 0 and not Path("/nonexistent").exists()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_history_and_prompt_reach_the_model(services: Services) -> None:
    sent: list[dict[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        body = 'data: {"choices": [{"delta": {"content": "ok"}}]}\n\ndata: [DONE]\n\n'
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    client = LlmClient(httpx.AsyncClient(transport=httpx.MockTransport(answer)))
    store = ConversationStore(services.catalog.sessions)
    store.save_message(message_id="m0", conversation_id="c", chat_type="llm_chat", query="q0", response="a0", meta={})
    prompts = load_prompt_templates(PROMPT_TEMPLATES_FILE)
    service = ChatService(registry=registry(), client=client, prompts=prompts, conversations=store,
                          search=services.search, temp=services.temp_knowledge, web=services.chat.web,
                          summaries=services.summaries, direct=DirectAnswers(services.catalog, 0.35),
                          rewriter=QueryRewriter(client, prompts, max_chars=1000))  # fmt: skip
    options = ChatOptions("cloud", ChatParams(0.1, 5), "en")
    events = await service.llm_chat("q1", conversation_id="c", history_len=-1, history=[], options=options, stream=True)
    assert [event["text"] async for event in events] == ["ok"]
    assert sent[0]["model"] == "gpt" and sent[0]["max_tokens"] == 5 and sent[0]["temperature"] == 0.1
    assert [m["content"] for m in sent[0]["messages"][:2]] == ["q0", "a0"]
    assert sent[0]["messages"][2]["content"].startswith("Answer in English") and sent[0]["messages"][2][
        "content"
    ].endswith("q1")
    explicit = [{"role": "user", "content": "given"}]
    events = await service.llm_chat("q2", conversation_id="c", history_len=-1, history=explicit, options=options,
                                    stream=False)  # fmt: skip
    assert [event["text"] async for event in events] == ["ok"]
    assert sent[1]["messages"][0]["content"] == "given" and len(sent[1]["messages"]) == 2
    assert len(store.history("c")) == 6
    await client.aclose()
