"""A stock Langchain-Chatchat 0.2.10 client against a real server, no model configured.

The bodies below are the ones its `webui_pages/utils.py` ApiRequest sends, field for field and with its defaults
(`"conversation_id": null`, `"score_threshold": 1.0`, form fields as httpx encodes them, `docs` as a JSON string),
encoded as httpx encodes `json=`. Streams are read the way that client reads them: each chunk is `data: {json}`
(`chunk[6:-2]`) or a plain JSON envelope. Every call of its UI's KB lifecycle and chat must succeed, or say clearly
that no model is configured; none may answer 422.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import LiveServer, make_settings

from server.chat.events import NO_LLM_ANSWER

KB = "chatchat_kb"
FOLDER_KB = "copied_kb"
CHATCHAT_MODEL = "chatglm3-6b"  # LLM_MODELS[0] of a stock Chatchat configuration
GUIDE = "安装方法：运行 make start 即可。然后打开浏览器访问接口文档。".encode()
CONFIG = "# 手册\n\n## 配置\n配置文件在 configs 目录，可以用环境变量覆盖。".encode()
UPLOAD_DEFAULTS = {"chunk_size": 250, "chunk_overlap": 50, "zh_title_enhance": False}  # CHUNK_SIZE, OVERLAP_SIZE, …


def _json_bytes(body: Any) -> bytes:
    return json.dumps(body).encode("utf-8")  # what httpx sends for json=body (ASCII escapes, default separators)


class Chatchat:
    """The requests of Chatchat 0.2.10's ApiRequest, with its defaults."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def post(self, path: str, body: Any = None) -> httpx.Response:
        content = None if body is None else _json_bytes(body)
        return self.client.post(path, content=content, headers={"Content-Type": "application/json"})

    def stream(self, path: str, body: Any) -> list[dict[str, Any]]:
        """What ApiRequest._httpx_stream2generator yields for a stream (each flushed event arrives alone)."""
        events = []
        with self.client.stream(
            "POST", path, content=_json_bytes(body), headers={"Content-Type": "application/json"}
        ) as r:
            for chunk in _events(r.iter_text()):
                events.append(json.loads(chunk[6:-2]) if chunk.startswith("data: ") else json.loads(chunk))
        return events

    def upload(self, kb: str, files: list[tuple[str, bytes]], *, docs: dict[str, Any] | None = None) -> httpx.Response:
        data = {
            "knowledge_base_name": kb,
            "override": False,
            "to_vector_store": True,
            **UPLOAD_DEFAULTS,
            "docs": json.dumps(docs or {}, ensure_ascii=False),
            "not_refresh_vs_cache": False,
        }
        return self.client.post("/knowledge_base/upload_docs", data=data, files=[("files", f) for f in files])

    def search(self, kb: str, query: str = "", file_name: str = "") -> httpx.Response:
        body = {"query": query, "knowledge_base_name": kb, "top_k": 3, "score_threshold": 1.0}
        return self.post("/knowledge_base/search_docs", {**body, "file_name": file_name, "metadata": {}})


def _events(chunks: Iterator[str]) -> Iterator[str]:
    """Event texts; a plain JSON answer (an error before the stream started) is one. Over loopback one read may
    hold two flushed events, so the reads are split on the event boundary again."""
    for chunk in chunks:
        for part in chunk.split("\r\n\r\n"):
            if part.strip():
                yield part + "\r\n" if part.startswith("data: ") else part


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Chatchat, Path]]:
    tmp = tmp_path_factory.mktemp("chatchat")
    settings = make_settings(tmp)
    with LiveServer(settings) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        yield Chatchat(client), settings.data_dir


def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200 and response.json()["code"] == 200, response.text
    return response.json()["data"]


def _kb(cc: Chatchat, name: str) -> str:
    """A KB of guide.txt and config.md, made as Chatchat's UI makes one (each test has its own)."""
    body = {"knowledge_base_name": name, "vector_store_type": "faiss", "embed_model": "hash"}
    _ok(cc.post("/knowledge_base/create_knowledge_base", body))
    assert _ok(cc.upload(name, [("guide.txt", GUIDE), ("config.md", CONFIG)])) == {"failed_files": {}}
    return name


def test_server_configs_have_chatchat_keys(api: tuple[Chatchat, Path]) -> None:
    cc, _ = api
    configs = cc.post("/server/configs").json()
    assert configs["CHUNK_SIZE"] == 250 and configs["OVERLAP_SIZE"] == 50 and configs["VECTOR_SEARCH_TOP_K"] == 3
    assert configs["SCORE_THRESHOLD"] == 0.0 and configs["DEFAULT_VS_TYPE"] == "faiss"
    assert configs["LLM_MODELS"] == [] and configs["TEMPERATURE"] == 0.7 and configs["ZH_TITLE_ENHANCE"] is False
    assert "{{ input }}" in configs["PROMPT_TEMPLATES"]["llm_chat"]["default"]
    assert configs["chunk_size"] == 250  # ours stay beside them


def test_kb_lifecycle(api: tuple[Chatchat, Path]) -> None:
    cc, _ = api
    assert KB not in _ok(cc.client.get("/knowledge_base/list_knowledge_bases"))
    _kb(cc, KB)
    assert sorted(_ok(cc.client.get("/knowledge_base/list_files", params={"knowledge_base_name": KB}))) == [
        "config.md",
        "guide.txt",
    ]
    hits = cc.search(KB, "配置文件在哪里").json()
    assert hits and hits[0]["metadata"]["source"] == "config.md"  # 1.0: Chatchat's "no filtering"
    chunks = cc.search(KB, file_name="guide.txt").json()
    assert chunks and {c["metadata"]["source"] for c in chunks} == {"guide.txt"}
    edited = {chunks[0]["id"]: {"page_content": "新的内容：安装只需一步。", "metadata": chunks[0]["metadata"]}}
    _ok(cc.post("/knowledge_base/update_docs_by_id", {"knowledge_base_name": KB, "docs": edited}))
    _ok(cc.post("/knowledge_base/update_info", {"knowledge_base_name": KB, "kb_info": "说明"}))
    update = {"knowledge_base_name": KB, "file_names": ["config.md"], "override_custom_docs": False}
    _ok(
        cc.post(
            "/knowledge_base/update_docs", {**update, **UPLOAD_DEFAULTS, "docs": "{}", "not_refresh_vs_cache": False}
        )
    )
    _ok(cc.post("/other/embed_texts", {"texts": ["你好"], "embed_model": "hash", "to_query": False}))
    body = {
        "knowledge_base_name": KB,
        "file_names": ["guide.txt"],
        "delete_content": False,
        "not_refresh_vs_cache": False,
    }
    assert _ok(cc.post("/knowledge_base/delete_docs", body)) == {"failed_files": {}}
    _ok(cc.post("/knowledge_base/delete_knowledge_base", KB))
    assert KB not in _ok(cc.client.get("/knowledge_base/list_knowledge_bases"))


def test_custom_docs_apply_to_files_already_in_the_kb(api: tuple[Chatchat, Path]) -> None:
    cc, _ = api
    kb = _kb(cc, "custom_docs")
    docs = {"config.md": [{"page_content": "手写的配置说明：见 settings.yaml。", "metadata": {}}]}
    assert _ok(cc.upload(kb, [("notes.txt", b"Notes in English.")], docs=docs)) == {"failed_files": {}}
    chunks = cc.search(kb, file_name="config.md").json()
    assert [c["page_content"] for c in chunks] == ["手写的配置说明：见 settings.yaml。"]
    absent = {"missing.txt": [{"page_content": "x", "metadata": {}}]}
    failed = cc.upload(kb, [("more.txt", b"More notes.")], docs=absent).json()["data"]["failed_files"]
    assert list(failed) == ["missing.txt"] and "neither uploaded now nor in" in failed["missing.txt"]


def test_chat_without_a_model(api: tuple[Chatchat, Path]) -> None:
    cc, _ = api
    kb = _kb(cc, "chat_kb")
    chat = {
        "query": "你好",
        "conversation_id": None,
        "history_len": -1,
        "history": [],
        "stream": True,
        "model_name": CHATCHAT_MODEL,
        "temperature": 0.7,
        "max_tokens": None,
        "prompt_name": "default",
    }
    [answer] = cc.stream("/chat/chat", chat)
    assert answer["code"] == 503 and "no LLM is configured" in answer["msg"]  # what its UI shows, never a 422
    kb_chat = {
        "query": "配置文件在哪里",
        "knowledge_base_name": kb,
        "top_k": 3,
        "score_threshold": 1.0,
        **{key: chat[key] for key in ("history", "stream", "model_name", "temperature", "max_tokens", "prompt_name")},
    }
    events = cc.stream("/chat/knowledge_base_chat", kb_chat)
    assert events[0] == {"answer": NO_LLM_ANSWER} and len(events[-1]["docs"]) >= 1
    link = f"({cc.client.base_url}/knowledge_base/download_doc?knowledge_base_name={kb}&file_name="
    assert link in events[-1]["docs"][0]
    feedback = cc.post("/chat/feedback", {"message_id": "0" * 32, "score": 80, "reason": None})
    assert feedback.status_code == 404  # no such message; the null reason is accepted


def test_file_chat_without_a_model(api: tuple[Chatchat, Path]) -> None:
    cc, _ = api
    form = {"knowledge_id": None, **UPLOAD_DEFAULTS}
    uploaded = _ok(cc.client.post("/knowledge_base/upload_temp_docs", data=form, files=[("files", ("a.txt", GUIDE))]))
    body = {"query": "怎么安装", "knowledge_id": uploaded["id"], "top_k": 3, "score_threshold": 1.0, "history": []}
    extra = {"stream": True, "model_name": CHATCHAT_MODEL, "temperature": 0.7, "max_tokens": None}
    events = cc.stream("/chat/file_chat", {**body, **extra, "prompt_name": "default"})
    assert events[0] == {"answer": NO_LLM_ANSWER} and "安装方法" in events[-1]["docs"][0]
    more = {**form, "knowledge_id": uploaded["id"]}  # its client names the earlier upload knowledge_id
    again = _ok(cc.client.post("/knowledge_base/upload_temp_docs", data=more, files=[("files", ("b.md", CONFIG))]))
    assert again["id"] == uploaded["id"]
    both = cc.stream("/chat/file_chat", {**body, **extra, "query": "配置文件在哪里"})
    assert any("配置文件" in doc for doc in both[-1]["docs"])


def test_model_and_server_routes(api: tuple[Chatchat, Path]) -> None:
    cc, _ = api
    assert _ok(cc.post("/llm_model/list_running_models", {"controller_address": None})) == {}
    assert _ok(cc.post("/llm_model/list_config_models", {"types": ["local", "online"]})) == {"local": {}, "online": {}}
    assert _ok(cc.post("/llm_model/list_config_models", {"types": None})) == {"local": {}, "online": {}}
    config = cc.post("/llm_model/get_model_config", {"model_name": CHATCHAT_MODEL})
    assert config.status_code == 503 and "no LLM is configured" in config.json()["msg"]
    prompt = cc.post("/server/get_prompt_template", {"type": "llm_chat", "name": "default"})
    assert prompt.status_code == 200 and "{{ input }}" in prompt.text
    assert cc.post("/server/get_prompt_template", {"type": None, "name": None}).status_code == 200


def test_rebuild_registers_a_kb_copied_into_its_folder(api: tuple[Chatchat, Path]) -> None:
    cc, data_dir = api
    content = data_dir / FOLDER_KB / "content"
    (content / "sub").mkdir(parents=True)
    (content / "guide.txt").write_bytes(GUIDE)
    (content / "sub" / "config.md").write_bytes(CONFIG)
    body = {"knowledge_base_name": FOLDER_KB, "allow_empty_kb": True, "vs_type": "faiss", "embed_model": "hash"}
    events = cc.stream("/knowledge_base/recreate_vector_store", {**body, **UPLOAD_DEFAULTS})
    progress = [e for e in events if "finished" in e]
    assert [(e["code"], e["finished"], e["total"]) for e in progress] == [(200, 1, 2), (200, 2, 2)]
    assert progress[0]["msg"] == "(1 / 2): guide.txt" and events[-1]["code"] == 200
    assert FOLDER_KB in _ok(cc.client.get("/knowledge_base/list_knowledge_bases"))
    assert cc.search(FOLDER_KB, "配置文件在哪里").json()[0]["metadata"]["source"] == "sub/config.md"
    again = cc.stream("/knowledge_base/recreate_vector_store", {**body, **UPLOAD_DEFAULTS})
    assert again[-1]["code"] == 200 and len(again) == 3  # a registered KB is rebuilt as before


def test_rebuild_of_an_unknown_kb_without_a_folder_is_404(api: tuple[Chatchat, Path]) -> None:
    cc, data_dir = api
    body = {"knowledge_base_name": "nowhere", "allow_empty_kb": True, "vs_type": "faiss", "embed_model": "hash"}
    [answer] = cc.stream("/knowledge_base/recreate_vector_store", body)
    assert answer["code"] == 404 and "<data_dir>/nowhere/content/" in answer["msg"]
    (data_dir / "later" / "content").mkdir(parents=True)
    [refused] = cc.stream(
        "/knowledge_base/recreate_vector_store", {**body, "knowledge_base_name": "later", "allow_empty_kb": False}
    )
    assert refused["code"] == 404 and "allow_empty_kb=true" in refused["msg"]


def test_explicit_nulls_are_defaults_and_required_fields_stay_required(api: tuple[Chatchat, Path]) -> None:
    cc, _ = api
    search = {"query": "x", "knowledge_base_name": _kb(cc, "nulls"), "top_k": None, "score_threshold": None}
    assert cc.post("/knowledge_base/search_docs", {**search, "file_name": None, "metadata": None}).status_code == 200
    missing = cc.post("/knowledge_base/search_docs", {**search, "knowledge_base_name": None})
    assert missing.status_code == 422 and "knowledge_base_name" in missing.json()["msg"]
    embed = cc.post("/other/embed_texts", {"texts": ["你好"], "embed_model": None, "to_query": None})
    assert embed.status_code == 200
