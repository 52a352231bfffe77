"""The exact bytes the Chatchat-0.2-style routes answer, compared with a recorded golden file.

A scripted KB lifecycle (hash embedder, no LLM) runs through every KB, file, search, rebuild, temp-docs, model and
server route. Each answer's status, content type and body bytes are recorded; values that differ between runs
(chunk ids, timestamps, temporary knowledge ids) are replaced by placeholders first. A refactor that changes what a
client receives fails here. `ZHIKU_UPDATE_GOLDEN=1 pytest tests/test_wire_format.py` rewrites the file after an
intended change of the wire format.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import make_settings
from fastapi.testclient import TestClient

from server.api.app import create_app

GOLDEN = Path(__file__).parent / "golden" / "wire_format.jsonl"
KB = "线格式"
# /server/configs is typed on purpose and may gain keys; it has its own test. Everything else is compared.
_VOLATILE = [
    (re.compile(rb"\b[0-9a-f]{32}\b"), b"<hex32>"),
    (re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)?"), b"<time>"),
]
GUIDE = "安装方法：运行 make start 即可。然后打开浏览器访问接口文档。".encode()
CONFIG = "# 手册\n\n## 配置\n配置文件在 configs 目录，可以用环境变量覆盖。\n\n## 检索\n检索模式有三种。".encode()
NOTES = b"Notes in English: the keyword index stems words, and hybrid search fuses both lists."


def _normalised(body: bytes) -> str:
    for pattern, placeholder in _VOLATILE:
        body = pattern.sub(placeholder, body)
    return body.decode("utf-8", errors="replace")


class Recorder:
    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.lines: list[dict[str, Any]] = []

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.client.request(method, path, **kwargs)
        self.lines.append(
            {
                "request": _normalised(f"{method} {path} {json.dumps(_describe(kwargs))}".encode()),
                "status": response.status_code,
                "type": response.headers.get("content-type", ""),
                "body": _normalised(response.content),
            }
        )
        return response


def _describe(kwargs: dict[str, Any]) -> Any:
    files = kwargs.get("files")
    names = [part[1][0] for part in files] if files else None
    return {"json": kwargs.get("json"), "params": kwargs.get("params"), "data": kwargs.get("data"), "files": names}


def _files(*items: tuple[str, bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (name, data, "application/octet-stream")) for name, data in items]


def _kb_routes(r: Recorder) -> None:
    r.call("GET", "/knowledge_base/list_knowledge_bases")
    r.call("POST", "/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB, "kb_info": "说明"})
    r.call("POST", "/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB})
    r.call("POST", "/knowledge_base/create_knowledge_base", json={"knowledge_base_name": "x", "vector_store_type": "y"})
    r.call("POST", "/knowledge_base/create_knowledge_base", json={"knowledge_base_name": "../bad"})
    r.call("GET", "/knowledge_base/list_knowledge_bases")
    r.call("GET", "/knowledge_base/list_knowledge_base_details")
    r.call("GET", "/knowledge_base/knowledge_base_info", params={"knowledge_base_name": KB})
    r.call("GET", "/knowledge_base/knowledge_base_info", params={"knowledge_base_name": "nope"})
    r.call("POST", "/knowledge_base/update_info", json={"knowledge_base_name": KB, "kb_info": "产品手册"})
    r.call("POST", "/knowledge_base/update_search_mode", json={"knowledge_base_name": KB, "search_mode": "hybrid"})
    r.call("POST", "/knowledge_base/update_search_mode", json={"knowledge_base_name": KB, "search_mode": "bad"})


def _file_routes(r: Recorder) -> None:
    form = {"knowledge_base_name": KB, "chunk_size": "40", "chunk_overlap": "5"}
    upload = "/knowledge_base/upload_docs"
    r.call("POST", upload, data=form, files=_files(("docs/guide.txt", GUIDE), ("config.md", CONFIG)))
    r.call("POST", upload, data=form, files=_files(("config.md", CONFIG)))
    r.call("POST", upload, data=form, files=_files(("notes.txt", NOTES), ("bad.exe", b"MZ")))
    r.call("POST", upload, data=form, files=_files(("photo.jpg", b"\xff\xd8\xff")))
    r.call("POST", upload, data=form, files=_files(("../escape.txt", b"x")))
    r.call("POST", upload, data={**form, "to_vector_store": "false"}, files=_files(("later.txt", "稍后。".encode())))
    docs = json.dumps({"custom.txt": [{"page_content": "自定义片段", "metadata": {"k": 1}}]}, ensure_ascii=False)
    r.call("POST", upload, data={**form, "docs": docs}, files=_files(("custom.txt", "原文。".encode())))
    r.call("POST", upload, data={**form, "chunk_overlap": "40"}, files=_files(("c.txt", b"text")))
    r.call("GET", "/knowledge_base/list_files", params={"knowledge_base_name": KB})
    r.call("GET", "/knowledge_base/list_file_details", params={"knowledge_base_name": KB, "order_by": "size"})
    r.call("GET", "/knowledge_base/list_file_details", params={"knowledge_base_name": KB, "limit": 1, "offset": 1})
    r.call("GET", "/knowledge_base/list_folder_only_files", params={"knowledge_base_name": KB})
    params = {"knowledge_base_name": KB, "file_name": "docs/guide.txt"}
    r.call("GET", "/knowledge_base/download_doc", params=params)
    r.call("GET", "/knowledge_base/download_doc", params={**params, "preview": True})
    r.call("GET", "/knowledge_base/download_doc", params={**params, "file_name": "../../info.db"})
    r.call("GET", "/knowledge_base/download_doc", params={**params, "file_name": "missing.txt"})


def _search_routes(r: Recorder) -> None:
    search = "/knowledge_base/search_docs"
    for mode in ("dense", "keyword", "hybrid", None):
        r.call("POST", search, json={"knowledge_base_name": KB, "query": "配置文件 环境变量", "search_mode": mode})
    r.call("POST", search, json={"knowledge_base_name": KB, "query": "hybrid search", "top_k": 2})
    r.call("POST", search, json={"knowledge_base_name": KB, "query": "", "file_name": "config.md"})
    r.call("POST", search, json={"knowledge_base_name": KB, "query": "", "metadata": {"source": "notes.txt"}})
    r.call("POST", search, json={"knowledge_base_name": KB, "query": "配置", "score_threshold": 1.5})
    r.call("POST", search, json={"knowledge_base_name": KB, "query": "配置", "top_k": 0})
    r.call("POST", search, json={"knowledge_base_name": "nope", "query": "配置"})
    r.call("POST", search, json={"knowledge_base_name": [KB, KB], "query": "配置"})


def _edit_routes(r: Recorder) -> None:
    listed = r.client.post(
        "/knowledge_base/search_docs", json={"knowledge_base_name": KB, "query": "", "file_name": "config.md"}
    ).json()
    first, second = listed[0], listed[1]
    edits = {first["id"]: {"page_content": "已编辑的片段", "metadata": first["metadata"]}, second["id"]: None}
    r.call("POST", "/knowledge_base/update_docs_by_id", json={"knowledge_base_name": KB, "docs": edits})
    r.call("POST", "/knowledge_base/update_docs_by_id", json={"knowledge_base_name": KB, "docs": {"nope": None}})
    r.call("POST", "/knowledge_base/update_docs", json={"knowledge_base_name": KB, "file_names": ["config.md"]})
    body = {"knowledge_base_name": KB, "file_names": ["config.md", "gone.txt"], "override_custom_docs": True}
    r.call("POST", "/knowledge_base/update_docs", json=body)
    r.call("POST", "/knowledge_base/recreate_vector_store", json={"knowledge_base_name": KB})
    r.call("POST", "/knowledge_base/recreate_vector_store", json={"knowledge_base_name": "nope"})
    body = {"knowledge_base_name": KB, "file_names": ["notes.txt", "../x"], "delete_content": True}
    r.call("POST", "/knowledge_base/delete_docs", json=body)
    r.call("POST", "/knowledge_base/delete_docs", json={"knowledge_base_name": KB, "file_names": ["nope.txt"]})


def _other_routes(r: Recorder) -> None:
    r.call("POST", "/knowledge_base/upload_temp_docs", files=_files(("t.txt", GUIDE), ("bad.exe", b"MZ")))
    r.call("POST", "/knowledge_base/upload_temp_docs", files=_files(("bad.exe", b"MZ")))
    r.call("POST", "/chat/file_chat", json={"query": "安装", "knowledge_id": "nope"})
    r.call("POST", "/chat/chat", json={"query": "你好"})
    r.call("POST", "/chat/knowledge_base_chat", json={"query": "你好", "knowledge_base_name": "nope"})
    r.call("POST", "/chat/feedback", json={"message_id": "nope", "score": 50})
    r.call("POST", "/other/embed_texts", json={"texts": ["你好"], "embed_model": "hash-alt"})
    r.call("POST", "/llm_model/list_config_models", json={})
    r.call("POST", "/llm_model/list_running_models", json={})
    r.call("POST", "/llm_model/get_model_config", json={"model_name": "nope"})
    r.call("POST", "/server/get_prompt_template", json={"type": "knowledge_base_chat", "name": "default"})
    r.call("POST", "/knowledge_base/delete_knowledge_base", json=KB)
    r.call("POST", "/knowledge_base/delete_knowledge_base", json={"knowledge_base_name": KB})
    r.call("GET", "/health")


def test_routes_answer_the_recorded_bytes(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, kb={"default_embed_model": "hash", "search_mode": "dense"})
    with TestClient(create_app(settings)) as client:
        recorder = Recorder(client)
        for script in (_kb_routes, _file_routes, _search_routes, _edit_routes, _other_routes):
            script(recorder)
    lines = [json.dumps(line, ensure_ascii=False) for line in recorder.lines]
    if os.environ.get("ZHIKU_UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text("\n".join(lines) + "\n", encoding="utf-8")
    if not GOLDEN.is_file():
        pytest.fail(f"{GOLDEN} is missing; record it with ZHIKU_UPDATE_GOLDEN=1")
    expected = GOLDEN.read_text(encoding="utf-8").splitlines()
    for index, (got, want) in enumerate(zip(lines, expected, strict=False)):
        assert json.loads(got) == json.loads(want), f"answer {index} differs"
    assert len(lines) == len(expected)
