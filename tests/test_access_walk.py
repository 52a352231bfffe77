"""Every route of /openapi.json, called with no key, a read key for the KB it names, a write key for another KB,
and the admin key: each answers as server/auth/policy.py says, and no route is missing from that table."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from server.api.app import create_app
from server.auth.policy import POLICY, Access, access_of
from tests.conftest import make_settings

ADMIN = "walk-admin"
KB, OTHER = "alpha", "beta"
PATH_VALUES = {"name": "run-x", "key_id": "nokey"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = make_settings(Path(tmp_path_factory.mktemp("walk")), api={"api_key": ADMIN})
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {ADMIN}"}) as client:
        for name in (KB, OTHER):
            client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": name})
        job = client.post(
            "/knowledge_base/upload_docs",
            data={"knowledge_base_name": KB, "background": "true"},
            files={"files": ("a.txt", "第一段。".encode())},
        ).json()["data"]["job_id"]
        keys = {"job_id": job}
        for label, kbs, right in (("read", [KB], "read"), ("other", [OTHER], "write")):
            made = client.post("/api_keys", json={"knowledge_bases": kbs, "right": right})
            keys[label] = made.json()["data"]["key"]
        yield client, keys


def operations(client: TestClient) -> list[tuple[str, str, dict[str, Any]]]:
    spec = client.get("/openapi.json").json()
    found = [(method.upper(), path, op) for path, ops in spec["paths"].items() for method, op in ops.items()]
    # the destructive ones last, so the KBs stay for the others
    return sorted(found, key=lambda item: ("delete" in item[1] or "revoke" in item[1], item[1]))


def call(
    client: TestClient, method: str, path: str, op: dict[str, Any], key: str | None, job_id: str
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {"Authorization": ""}
    url = path.replace("{job_id}", job_id)
    for name, value in PATH_VALUES.items():
        url = url.replace(f"{{{name}}}", value)
    query = {
        p["name"]: KB for p in op.get("parameters", []) if p["in"] == "query" and p["name"] == "knowledge_base_name"
    }
    content = op.get("requestBody", {}).get("content", {})
    if "multipart/form-data" in content:
        files = {"files": ("a.txt", b"text"), "file": ("a.txt", b"text")}
        return client.request(method, url, params=query, data={"knowledge_base_name": KB}, files=files, headers=headers)
    body = {"knowledge_base_name": KB} if content else None
    return client.request(method, url, params=query, json=body, headers=headers)


def test_every_route_is_in_the_policy(world: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = world
    listed = {(method, path) for method, path, _ in operations(client)}
    assert listed - set(POLICY) == set()


def expect(access: Access, who: str, response: httpx.Response) -> str | None:
    """What is wrong with this answer, or None."""
    status, text = response.status_code, response.text
    kb_hidden = status == 404 and ("does not exist" in text)
    if who == "none":
        ok = status == 200 if access == "open" else status == 401
    elif who == "admin":
        ok = (status not in (401, 403) and status < 500) or status in (502, 503)
    elif access == "admin":
        ok = status == 403
    elif who == "read":
        ok = status == 403 if access == "write" else (status not in (401, 403) and not (kb_hidden and KB in text))
    else:  # a write key for the other KB, on a request that names KB
        ok = kb_hidden if access in ("read", "write", "read_optional") else status not in (401, 403)
    return None if ok else f"{status} {text[:200]}"


@pytest.mark.parametrize("who", ["none", "read", "other", "admin"])
def test_each_route_answers_each_key_as_the_policy_says(world: tuple[TestClient, dict[str, str]], who: str) -> None:
    client, keys = world
    key = {"none": None, "admin": ADMIN}.get(who, keys.get(who))
    wrong = []
    for method, path, op in operations(client):
        if who == "admin" and ("delete_knowledge_base" in path or path.startswith("/llm_model")):
            continue  # the walk needs the KBs; model routes have no model to act on here
        answer = call(client, method, path, op, key, keys["job_id"])
        problem = expect(access_of(method, path), who, answer)
        if problem:
            wrong.append(f"{method} {path} ({access_of(method, path)}): {problem}")
    assert wrong == []
