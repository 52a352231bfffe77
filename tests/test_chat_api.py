"""Chat, model and server routes without a model worker: no-LLM behaviour, bad input, routes that need no LLM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import make_settings
from fastapi.testclient import TestClient

from server.api.app import create_app
from server.chat.events import NO_LLM_ANSWER

KB = "手册"
GUIDE = "安装方法：运行 make start 即可。然后打开浏览器访问接口文档。".encode()
CONFIG = "# 手册\n\n## 配置\n配置文件在 configs 目录，可以用环境变量覆盖。".encode()


def events(response: Any) -> list[dict[str, Any]]:
    assert response.headers["content-type"].startswith("text/event-stream"), response.text
    chunks = [part for part in response.text.split("\r\n\r\n") if part]
    assert all(chunk.startswith("data: ") for chunk in chunks)
    return [json.loads(chunk[6:]) for chunk in chunks]


@pytest.fixture
def kb(client: TestClient) -> TestClient:
    assert client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB}).status_code == 200
    parts = [("files", ("docs/安装 guide.txt", GUIDE, "text/plain")), ("files", ("config.md", CONFIG, "text/plain"))]
    assert client.post("/knowledge_base/upload_docs", data={"knowledge_base_name": KB}, files=parts).status_code == 200
    return client


def test_chat_without_llm_is_503_saying_how_to_configure(client: TestClient) -> None:
    for body in ({"query": "你好"}, {"query": "你好", "model_name": "chatglm3-6b", "stream": True}):
        response = client.post("/chat/chat", json=body)
        assert response.status_code == 503 and response.json()["code"] == 503
        assert "llm_models" in response.json()["msg"] and "default_llm" in response.json()["msg"]


def test_kb_chat_without_llm_streams_docs_and_says_no_model(kb: TestClient) -> None:
    body = {"query": "配置文件在哪里", "knowledge_base_name": KB, "stream": True, "top_k": 2}
    got = events(kb.post("/chat/knowledge_base_chat", json=body))
    assert got[0] == {"answer": NO_LLM_ANSWER} and "No LLM is configured" in got[0]["answer"]
    docs = got[-1]["docs"]
    assert len(docs) == 2 and docs[0].startswith("出处 [1] [")
    assert "/knowledge_base/download_doc?knowledge_base_name=%E6%89%8B%E5%86%8C&file_name=" in docs[0]
    one = events(kb.post("/chat/knowledge_base_chat", json={**body, "stream": False}))
    assert len(one) == 1 and one[0]["answer"].startswith(NO_LLM_ANSWER) and len(one[0]["docs"]) == 2


def test_chinese_is_sent_as_utf8_not_escapes(kb: TestClient) -> None:
    body = {"query": "配置", "knowledge_base_name": KB}
    raw = kb.post("/chat/knowledge_base_chat", json=body).content
    assert "未配置大语言模型".encode() in raw and b"\\u" not in raw


def test_citations_name_file_and_page(kb: TestClient) -> None:
    got = events(kb.post("/chat/knowledge_base_chat", json={"query": "安装", "knowledge_base_name": KB, "top_k": 3}))
    sources = [doc.split("\n", 1)[0] for doc in got[0]["docs"]]
    assert any("[docs/安装 guide.txt](" in line and "file_name=docs%2F%E5%AE%89%E8%A3%85%20guide.txt" in line
               for line in sources)  # fmt: skip


@pytest.mark.parametrize(
    ("path", "body", "status", "fragment"),
    [
        ("/chat/knowledge_base_chat", {"query": "x", "knowledge_base_name": "nope"}, 404, "does not exist"),
        ("/chat/knowledge_base_chat", {"query": "", "knowledge_base_name": KB}, 422, "query"),
        ("/chat/knowledge_base_chat", {"query": "  ", "knowledge_base_name": KB}, 422, "query is empty"),
        ("/chat/knowledge_base_chat", {"query": "x", "knowledge_base_name": KB, "score_threshold": 1.5}, 422, "[0, 1]"),
        ("/chat/knowledge_base_chat", {"query": "x", "knowledge_base_name": KB, "history": [{"q": 1}]}, 422, "history"),
        ("/chat/knowledge_base_chat", {"query": "x", "knowledge_base_name": KB, "history": "hi"}, 422, "history"),
        ("/chat/knowledge_base_chat", {"query": "x", "knowledge_base_name": KB, "prompt_name": "zz"}, 404, "zz"),
        ("/chat/chat", {"query": "x", "max_tokens": -1}, 422, "max_tokens"),
        ("/chat/chat", {"query": "x", "max_tokens": 10**7}, 422, "max_tokens"),
        ("/chat/chat", {"query": "x", "temperature": 3}, 422, "temperature"),
        ("/chat/chat", {"query": "x", "history": [{"role": "robot", "content": "x"}]}, 422, "history"),
        ("/chat/file_chat", {"query": "x", "knowledge_id": "missing"}, 404, "upload_temp_docs"),
        ("/chat/feedback", {"message_id": "m", "score": 101}, 422, "score"),
        ("/chat/feedback", {"message_id": "nope", "score": 50}, 404, "nope"),
    ],
)
def test_bad_chat_input(kb: TestClient, path: str, body: dict[str, Any], status: int, fragment: str) -> None:
    response = kb.post(path, json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["code"] == status and fragment in response.json()["msg"]


def test_file_chat_with_temp_docs(client: TestClient) -> None:
    files = [("files", ("a.txt", "猫喜欢晒太阳，也喜欢吃鱼。".encode(), "text/plain")),
             ("files", ("bad.png", b"\x89PNG", "image/png"))]  # fmt: skip
    upload = client.post("/knowledge_base/upload_temp_docs", files=files, data={"chunk_size": 100, "chunk_overlap": 10})
    assert upload.status_code == 200, upload.text
    knowledge_id = upload.json()["data"]["id"]
    assert list(upload.json()["data"]["failed_files"][0]) == ["bad.png"]
    more = [("files", ("b.md", "# 狗\n\n狗喜欢散步。".encode(), "text/markdown"))]
    again = client.post("/knowledge_base/upload_temp_docs", files=more, data={"prev_id": knowledge_id})
    assert again.json()["data"] == {"id": knowledge_id, "failed_files": []}
    assert client.get("/knowledge_base/list_knowledge_bases").json()["data"] == []
    got = events(client.post("/chat/file_chat", json={"query": "猫喜欢什么", "knowledge_id": knowledge_id}))
    sources = [doc.split("\n", 1)[0] for doc in got[0]["docs"]]
    assert {"出处 [1] [a.txt]", "出处 [2] [b.md]"} & set(sources) and "download_doc" not in got[0]["docs"][0]
    unknown_prev = client.post("/knowledge_base/upload_temp_docs", files=more, data={"prev_id": "gone"})
    assert unknown_prev.status_code == 404


def test_model_routes_without_models(client: TestClient) -> None:
    assert client.post("/llm_model/list_running_models").json()["data"] == {}
    assert client.post("/llm_model/list_config_models").json()["data"] == {"local": {}, "online": {}}
    assert client.post("/llm_model/get_model_config", json={"model_name": "x"}).status_code == 503


def test_model_config_never_shows_secrets(tmp_path: Path) -> None:
    llms = {
        "remote": {"engine": "openai", "base_url": "http://bob:pw@host:9/v1?key=abc", "api_key": "sk-secret-1"},
        "local": {"engine": "transformers", "path": "/models/qwen"},
    }
    settings = make_settings(tmp_path, llm_models=llms, default_llm="local", llm_worker={"port": 1})
    with TestClient(create_app(settings)) as client:
        for name in ("remote", "local"):
            config = client.post("/llm_model/get_model_config", json={"model_name": name})
            assert config.status_code == 200 and config.json()["data"]["engine"] in ("openai", "transformers")
        listed = client.post("/llm_model/list_config_models").text + client.post("/llm_model/list_running_models").text
        remote = client.post("/llm_model/get_model_config", json={"model_name": "remote"}).text
        for text in (listed, remote, client.post("/server/configs").text, client.get("/v1/models").text):
            assert "sk-secret-1" not in text and "pw@" not in text and "abc" not in text
        assert "api_key" not in remote and "bob:***@host:9" in remote
        running = client.post("/llm_model/list_running_models").json()
        assert list(running["data"]) == ["remote"] and "worker does not answer" in running["msg"]
        assert client.post("/llm_model/get_model_config", json={"model_name": "x"}).status_code == 404
        change = client.post("/llm_model/change", json={"model_name": "local", "new_model_name": "remote"})
        assert change.status_code == 422 and "online model" in change.json()["msg"]
        stop = client.post("/llm_model/stop", json={"model_name": "local"})
        assert stop.status_code == 503 and "python -m server.llm_worker" in stop.json()["msg"]
        assert client.post("/llm_model/change", json={"model_name": "local", "new_model_name": "x"}).status_code == 404
        assert client.post("/chat/chat", json={"query": "hi", "model_name": "nope"}).status_code == 404
        down = client.post("/chat/chat", json={"query": "hi"})
        assert down.status_code == 503 and "127.0.0.1:1/v1" in down.json()["msg"]


def test_server_configs_and_prompts(client: TestClient) -> None:
    configs = client.post("/server/configs").json()
    assert (
        configs["top_k"] == 3 and configs["default_embed_model"] == "hash" and "faiss" in configs["vector_store_types"]
    )
    assert "default" in configs["prompt_templates"]["knowledge_base_chat"] and configs["llm_models"] == []
    template = client.post("/server/get_prompt_template", json={"type": "knowledge_base_chat", "name": "default"})
    assert template.status_code == 200 and "{{ context }}" in template.text and "已知信息" in template.text
    assert "{{ input }}" in client.post("/server/get_prompt_template").text
    assert client.post("/server/get_prompt_template", json={"type": "empty", "name": "en"}).status_code == 200
    assert client.post("/server/get_prompt_template", json={"type": "nope"}).status_code == 404
    assert client.post("/server/get_prompt_template", json={"type": "llm_chat", "name": "nope"}).status_code == 404


def test_embed_texts(client: TestClient) -> None:
    data = client.post("/other/embed_texts", json={"texts": ["你好", "世界"]}).json()["data"]
    assert len(data) == 2 and len(data[0]) == 64
    query = client.post("/other/embed_texts", json={"texts": ["你好"], "to_query": True, "embed_model": "hash-alt"})
    assert len(query.json()["data"][0]) == 32
    assert client.post("/other/embed_texts", json={"texts": ["x"], "embed_model": "nope"}).status_code == 422
    assert client.post("/other/embed_texts", json={"texts": []}).status_code == 422


def test_server_configs_lists_only_configured_stores(client: TestClient) -> None:
    configs = client.post("/server/configs").json()
    assert "pg" not in configs["vector_store_types"] and "milvus" in configs["vector_store_types"]


def test_server_configs_list_the_registries(client: TestClient) -> None:
    from server.loaders import LOADERS
    from server.retrieval.modes import SEARCH_MODES

    configs = client.post("/server/configs").json()
    assert configs["file_types"] == [{"extension": ext, "loader": loader.name} for ext, loader in LOADERS]
    assert {item["extension"] for item in configs["file_types"]} >= {".markdown", ".docx", ".pdf"}
    assert configs["search_modes"] == list(SEARCH_MODES) and "memory" not in configs["vector_store_types"]
