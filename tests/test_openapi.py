"""/openapi.json documents every route's answer, and what the routes really answer matches those models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import make_settings
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from server.api.app import create_app

KB = "文档库"
_RAW = {
    "text/plain",
    "application/octet-stream",
    "text/csv",
    "application/zip",
}  # a prompt template, a file, the audit log, a KB archive


def test_every_route_documents_its_answer(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    missing = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            success = next(code for code in operation["responses"] if code.startswith("2"))
            content = operation["responses"][success].get("content", {})
            schemas = {media: body.get("schema", {}) for media, body in content.items()}
            documented = [m for m, s in schemas.items() if m in _RAW or "$ref" in s or s.get("type") == "array"]
            if not documented:
                missing.append(f"{method.upper()} {path}: {schemas}")
    assert missing == []
    assert len(spec["paths"]) >= 30


def _api_routes(routes: list[Any]) -> list[APIRoute]:
    """The app's routes, those of included routers too (FastAPI keeps them in their own router)."""
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):
            found += _api_routes(route.original_router.routes)
    return found


def _route(client: TestClient, method: str, path: str) -> APIRoute:
    for route in _api_routes(client.app.routes):  # type: ignore[attr-defined]
        if route.path == path and method in route.methods:
            return route
    raise AssertionError(f"no route {method} {path}")


def _check(client: TestClient, method: str, path: str, **kwargs: Any) -> Any:
    """Call a route and validate a 200 answer against what the route declares; returns the response."""
    response = client.request(method, path, **kwargs)
    assert response.status_code == 200, response.text
    route = _route(client, method, path)
    if response.headers["content-type"].startswith("text/event-stream"):
        model = route.responses[200]["model"]
        events = [json.loads(line[6:]) for line in response.text.split("\r\n\r\n") if line.startswith("data: ")]
        assert events
        for event in events:
            TypeAdapter(model).validate_python(event)
    elif response.headers["content-type"].startswith("application/json"):
        TypeAdapter(route.response_model).validate_python(response.json())
    return response


def test_answers_validate_against_the_declared_models(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path))) as client:
        for call in _lifecycle(tmp_path):
            _check(client, *call[:2], **call[2])


def _lifecycle(tmp_path: Path) -> list[tuple[str, str, dict[str, Any]]]:
    files = [("files", ("a.md", "# 标题\n\n内容一。\n\n## 小节\n内容二。".encode(), "text/markdown"))]
    kb = {"knowledge_base_name": KB}
    first_chunk: dict[str, Any] = {}
    return [
        ("POST", "/knowledge_base/create_knowledge_base", {"json": kb}),
        ("GET", "/knowledge_base/list_knowledge_bases", {}),
        ("GET", "/knowledge_base/list_knowledge_base_details", {}),
        ("GET", "/knowledge_base/knowledge_base_info", {"params": kb}),
        ("POST", "/knowledge_base/upload_docs", {"data": kb, "files": files}),
        ("GET", "/knowledge_base/list_files", {"params": kb}),
        ("GET", "/knowledge_base/list_file_details", {"params": kb}),
        ("GET", "/knowledge_base/list_folder_only_files", {"params": kb}),
        ("POST", "/knowledge_base/search_docs", {"json": {**kb, "query": "内容"}}),
        ("POST", "/knowledge_base/update_info", {"json": {**kb, "kb_info": "说明"}}),
        ("POST", "/knowledge_base/update_search_mode", {"json": {**kb, "search_mode": "keyword"}}),
        ("POST", "/knowledge_base/update_docs", {"json": {**kb, "file_names": ["a.md"]}}),
        ("POST", "/knowledge_base/update_docs_by_id", {"json": {**kb, "docs": first_chunk}}),
        ("POST", "/knowledge_base/recreate_vector_store", {"json": kb}),
        ("POST", "/knowledge_base/upload_temp_docs", {"files": files}),
        ("POST", "/chat/knowledge_base_chat", {"json": {**kb, "query": "内容", "stream": True}}),
        ("POST", "/chat/knowledge_base_chat", {"json": {**kb, "query": "内容", "with_summaries": True, "top_k": None}}),
        ("POST", "/knowledge_base/kb_summary_api/search_summaries", {"json": {**kb, "query": "内容"}}),
        ("POST", "/server/list_search_engines", {}),
        ("POST", "/other/embed_texts", {"json": {"texts": ["你好"]}}),
        ("POST", "/server/configs", {}),
        ("POST", "/llm_model/list_config_models", {"json": {}}),
        ("POST", "/llm_model/list_running_models", {"json": {}}),
        ("GET", "/v1/models", {}),
        ("POST", "/v1/embeddings", {"json": {"model": "hash", "input": ["你好"]}}),
        ("POST", "/knowledge_base/delete_docs", {"json": {**kb, "file_names": ["a.md"]}}),
        ("POST", "/knowledge_base/delete_knowledge_base", {"json": KB}),
        ("GET", "/health", {}),
    ]
