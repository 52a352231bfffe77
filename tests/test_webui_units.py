"""Web UI pieces without Streamlit: the API client (over a mock transport), chunk diffs, batching, i18n."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from tests.webui_fake_api import fake_server_configs
from webui_pages.api_client import ApiClient, ApiError
from webui_pages.api_types import Chunk, UiDefaults
from webui_pages.chat_view import ChatMessage, conversation_markdown
from webui_pages.dialogue_page import ChatOptions, chat_payload, history_payload
from webui_pages.i18n import TEXTS, Translator
from webui_pages.kb_chunks import chunk_changes
from webui_pages.kb_upload import batches

ROOT = Path(__file__).resolve().parents[1]


def client_for(handler: httpx.MockTransport) -> ApiClient:
    return ApiClient("http://api.test", "secret", transport=handler)


def test_envelope_data_and_auth_header() -> None:
    seen = {}

    def handle(request: httpx.Request) -> httpx.Response:
        seen["auth"] = request.headers.get("authorization")
        return httpx.Response(200, json={"code": 200, "msg": "ok", "data": ["样例库"]})

    assert client_for(httpx.MockTransport(handle)).list_file_names("样例库") == ["样例库"]
    assert seen["auth"] == "Bearer secret"


def test_error_status_becomes_api_error_with_the_envelope_message() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(409, json={"code": 409, "msg": "已存在", "data": None}))
    with pytest.raises(ApiError) as caught:
        client_for(transport).create_kb("样例库", info="", vs_type="faiss", embed_model="hash")
    assert (caught.value.message, caught.value.status) == ("已存在", 409)


def test_unreachable_api_is_an_api_error_without_status() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    with pytest.raises(ApiError) as caught:
        client_for(httpx.MockTransport(refuse)).list_kbs()
    assert caught.value.status is None and "http://api.test" in caught.value.message


def test_search_docs_reads_the_bare_list() -> None:
    body = [{"id": "1", "page_content": "文本", "metadata": {"source": "a.md", "page": 3}, "score": 0.7}]
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json=body))
    [hit] = client_for(transport).search_docs("kb", "问", top_k=3, score_threshold=0.0)
    assert (hit.source, hit.page, hit.score) == ("a.md", 3, 0.7)


def test_rebuild_progress_is_read_from_server_sent_events() -> None:
    events = [{"code": 200, "msg": "(1 / 2): a.md", "total": 2, "finished": 1, "doc": "a.md"}]
    events.append({"code": 200, "msg": "rebuilt", "failed_files": {"b.md": "empty"}})
    stream = "".join(f"data: {json.dumps(e, ensure_ascii=False)}\r\n\r\n" for e in events)
    transport = httpx.MockTransport(lambda r: httpx.Response(200, text=stream))
    got = list(client_for(transport).recreate_vector_store("kb", chunk_size=250, chunk_overlap=50))
    assert [(e.finished, e.total, e.doc) for e in got] == [(1, 2, "a.md"), (None, None, "")]
    assert got[1].failed_files == {"b.md": "empty"}


def test_chat_stream_error_before_streaming_is_raised() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(404, json={"code": 404, "msg": "no such KB"}))
    with pytest.raises(ApiError, match="no such KB"):
        list(client_for(transport).chat("knowledge_base_chat", {"query": "q"}))


def test_list_models_merges_running_and_configured() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("list_running_models"):
            return httpx.Response(200, json={"code": 200, "msg": "", "data": {"b": {}}})
        return httpx.Response(200, json={"code": 200, "msg": "", "data": {"local": {"a": {}, "b": {}}, "online": {}}})

    assert client_for(httpx.MockTransport(handle)).list_models() == ["b", "a"]


def test_chunk_changes_leave_untouched_chunks_out() -> None:
    original = [Chunk("1", "一", {"source": "f.md", "page": 1}), Chunk("2", "二", {}), Chunk("3", "三", {})]
    changes = chunk_changes(original, {"1": "一改", "2": "二", "3": "三"}, {"3"}, ["新的", "  "], "f.md")
    assert changes.pop("1") == {"page_content": "一改", "metadata": {"source": "f.md", "page": 1}}
    assert changes.pop("3") is None
    [(new_id, new)] = changes.items()
    assert new == {"page_content": "新的", "metadata": {"source": "f.md"}} and new_id not in ("1", "2", "3")


def test_batches_respect_count_and_size() -> None:
    files = [(f"{i}.md", b"x" * 10) for i in range(5)] + [("big.pdf", b"x" * 100)]
    groups = batches(files, max_files=2, max_bytes=50)
    assert [[name for name, _ in group] for group in groups] == [
        ["0.md", "1.md"],
        ["2.md", "3.md"],
        ["4.md"],
        ["big.pdf"],
    ]


def test_the_forms_take_every_choice_from_server_configs() -> None:
    configs = fake_server_configs().model_copy(
        update={"vector_store_types": ["faiss", "milvus"], "chunk_size": 300, "default_llm": None}
    )
    defaults = UiDefaults.from_configs(configs)
    assert defaults.vs_types == ("faiss", "milvus") and defaults.embed_models == ("hash",)
    assert (defaults.chunk_size, defaults.default_llm) == (300, "")
    assert defaults.search_modes == ("dense", "keyword", "hybrid")
    assert "markdown" in defaults.file_types and "docx" in defaults.file_types  # the loaders' own list
    assert "default" in defaults.prompt_templates["knowledge_base_chat"]


def test_chat_payloads_per_mode() -> None:
    history = history_payload([ChatMessage("user", "1"), ChatMessage("assistant", "2"), ChatMessage("user", "3")], 1)
    assert history == [{"role": "assistant", "content": "2"}, {"role": "user", "content": "3"}]
    kb = ChatOptions("knowledge_base_chat", "m", 0.5, 1, "default", kbs=("库",), top_k=4, score_threshold=0.3)
    payload = chat_payload(kb, "问", history, "conv")
    assert payload["knowledge_base_name"] == "库" and payload["top_k"] == 4 and "conversation_id" not in payload
    two = ChatOptions("knowledge_base_chat", "m", 0.5, 1, "default", kbs=("甲", "乙"), search_mode="keyword")
    assert chat_payload(two, "问", history, "conv")["knowledge_base_name"] == ["甲", "乙"]
    assert chat_payload(two, "问", history, "conv")["search_mode"] == "keyword"
    llm = chat_payload(ChatOptions("llm_chat", "m", 0.5, 1, "default"), "问", [], "conv")
    assert llm["conversation_id"] == "conv" and "top_k" not in llm


def test_conversation_markdown_has_questions_answers_and_sources() -> None:
    messages = [ChatMessage("user", "问题"), ChatMessage("assistant", "回答", docs=["**[1]** a.md"])]
    text = conversation_markdown(Translator("zh"), messages)
    assert "## 用户\n\n问题" in text and "## 助手\n\n回答" in text and "### 出处（1 条）\n\n**[1]** a.md" in text


def test_every_text_key_used_by_the_pages_exists() -> None:
    sources = "".join(path.read_text(encoding="utf-8") for path in (ROOT / "webui_pages").glob("*.py"))
    used = set(re.findall(r"\bt\(\s*\"([a-z0-9_]+)\"", sources))
    assert used and used <= set(TEXTS), sorted(used - set(TEXTS))
    for prefix, names in {
        "section_": ("files", "upload", "chunks", "search", "rebuild"),
        "mode_": ("llm_chat",),
    }.items():
        assert all(prefix + name in TEXTS for name in names)


def test_translator_formats_and_refuses_unknown_languages() -> None:
    assert Translator("en")("files_total", total=3, page=1, pages=1) == "3 files · page 1 of 1"
    with pytest.raises(ValueError, match="unknown UI language"):
        Translator("fr")
