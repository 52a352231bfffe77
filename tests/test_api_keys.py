"""Per-KB API keys: issued by the admin, scoped to KBs with read or write, expiring, revocable; the audit log."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from server.api.app import create_app
from tests.conftest import make_settings

ADMIN = "admin-s3cret"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(tmp_path, api={"api_key": ADMIN})
    with TestClient(create_app(settings), headers=bearer(ADMIN)) as client:
        for name in ("alpha", "beta"):
            made = client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": name})
            assert made.status_code == 200, made.text
            upload = client.post(
                "/knowledge_base/upload_docs",
                data={"knowledge_base_name": name},
                files={"files": (f"{name}.txt", f"{name} 的说明文档：默认端口是 7861。".encode())},
            )
            assert upload.status_code == 200, upload.text
        yield client


def issue(api: TestClient, kbs: list[str], right: str, **extra: object) -> str:
    made = api.post("/api_keys", json={"name": "t", "knowledge_bases": kbs, "right": right, **extra})
    assert made.status_code == 201, made.text
    secret: str = made.json()["data"]["key"]
    return secret


def test_a_read_key_searches_its_kb_and_may_not_write(api: TestClient) -> None:
    key = bearer(issue(api, ["alpha"], "read"))
    found = api.post("/knowledge_base/search_docs", json={"query": "端口", "knowledge_base_name": "alpha"}, headers=key)
    assert found.status_code == 200 and found.json()
    refused = api.post(
        "/knowledge_base/delete_docs", json={"knowledge_base_name": "alpha", "file_names": ["alpha.txt"]}, headers=key
    )
    assert refused.status_code == 403 and "only read" in refused.json()["msg"]
    assert api.get("/knowledge_base/list_files", params={"knowledge_base_name": "alpha"}).json()["data"]


def test_a_key_cannot_learn_that_other_kbs_exist(api: TestClient) -> None:
    key = bearer(issue(api, ["alpha"], "write"))
    other = api.get("/knowledge_base/list_files", params={"knowledge_base_name": "beta"}, headers=key)
    missing = api.get("/knowledge_base/list_files", params={"knowledge_base_name": "nope"}, headers=key)
    assert other.status_code == missing.status_code == 404
    assert other.json()["msg"] == missing.json()["msg"].replace("nope", "beta")
    both = api.post("/knowledge_base/search_docs", json={"query": "端口", "knowledge_base_name": ["alpha", "beta"]})
    assert both.status_code == 200  # the admin reaches both
    fused = api.post(
        "/knowledge_base/search_docs", json={"query": "端口", "knowledge_base_name": ["alpha", "beta"]}, headers=key
    )
    assert fused.status_code == 404
    assert api.get("/knowledge_base/list_knowledge_bases", headers=key).json()["data"] == ["alpha"]
    details = api.get("/knowledge_base/list_knowledge_base_details", headers=key).json()["data"]
    assert [kb["name"] for kb in details] == ["alpha"]


def test_openai_chat_over_an_unscoped_kb_is_404(api: TestClient) -> None:
    key = bearer(issue(api, ["alpha"], "read"))
    body = {"model": "x", "messages": [{"role": "user", "content": "hi"}], "knowledge_base_name": "beta"}
    answer = api.post("/v1/chat/completions", json=body, headers=key)
    assert answer.status_code == 404 and "error" in answer.json()


def test_a_write_key_uploads_and_its_jobs_are_the_only_ones_it_sees(api: TestClient) -> None:
    key = bearer(issue(api, ["beta"], "write"))
    upload = api.post(
        "/knowledge_base/upload_docs",
        data={"knowledge_base_name": "beta", "background": "true"},
        files={"files": ("more.txt", "更多内容".encode())},
        headers=key,
    )
    assert upload.status_code == 202, upload.text
    job_id = upload.json()["data"]["job_id"]
    admin_job = api.post(
        "/knowledge_base/upload_docs",
        data={"knowledge_base_name": "alpha", "background": "true"},
        files={"files": ("x.txt", "别的".encode())},
    ).json()["data"]["job_id"]
    listed = api.get("/knowledge_base/jobs", headers=key).json()["data"]
    assert {job["knowledge_base_name"] for job in listed} == {"beta"}
    assert api.get(f"/knowledge_base/jobs/{job_id}", headers=key).status_code == 200
    hidden = api.get(f"/knowledge_base/jobs/{admin_job}", headers=key)
    unknown = api.get("/knowledge_base/jobs/0123", headers=key)
    assert hidden.status_code == unknown.status_code == 404


def test_revoked_and_expired_keys_stop_working(api: TestClient) -> None:
    secret = issue(api, ["alpha"], "read")
    made = api.get("/api_keys").json()["data"][-1]
    assert api.post(f"/api_keys/{made['id']}/revoke").status_code == 200
    assert api.post(f"/api_keys/{made['id']}/revoke").status_code == 409
    refused = api.get("/knowledge_base/list_knowledge_bases", headers=bearer(secret))
    assert refused.status_code == 401 and "revoked" in refused.json()["msg"]
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    short = issue(api, ["alpha"], "read", expires_at=soon)
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert (
        api.post("/api_keys", json={"knowledge_bases": ["alpha"], "right": "read", "expires_at": past}).status_code
        == 422
    )
    assert api.post("/api_keys/nope/revoke").status_code == 404
    assert api.get("/api_keys", headers=bearer(short)).status_code == 403  # the admin's routes stay the admin's


def test_keys_are_shown_once_and_never_logged(api: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    made = api.post("/api_keys", json={"name": "ops", "knowledge_bases": ["alpha"], "right": "write"})
    secret = made.json()["data"]["key"]
    api.get("/knowledge_base/list_files", params={"knowledge_base_name": "alpha"}, headers=bearer(secret))
    api.post(
        "/knowledge_base/delete_docs",
        json={"knowledge_base_name": "alpha", "file_names": ["x"]},
        headers=bearer(secret),
    )
    later = [api.get("/api_keys").text, api.get("/audit").text, api.get("/audit/export").text]
    assert all(secret not in text for text in later)
    assert secret not in caplog.text
    assert secret[:10] in later[0]  # its prefix tells it apart


def test_no_admin_key_means_no_scoped_keys(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path))) as client:
        refused = client.post("/api_keys", json={"knowledge_bases": ["a"], "right": "read"})
        assert refused.status_code == 409 and "api.api_key" in refused.json()["msg"]


def test_the_audit_log_records_every_write_with_its_result(api: TestClient) -> None:
    key_body = {"name": "w", "knowledge_bases": ["alpha"], "right": "write"}
    made = api.post("/api_keys", json=key_body).json()["data"]
    key = bearer(made["key"])
    api.post(
        "/knowledge_base/delete_docs", json={"knowledge_base_name": "alpha", "file_names": ["alpha.txt"]}, headers=key
    )
    api.post(
        "/knowledge_base/delete_docs", json={"knowledge_base_name": "beta", "file_names": ["beta.txt"]}, headers=key
    )
    api.post("/knowledge_base/search_docs", json={"query": "x", "knowledge_base_name": "alpha"}, headers=key)
    entries = api.get("/audit", params={"actor": f"key:{made['id']}"}).json()["data"]
    assert [(e["kb_name"], e["files"], e["status"]) for e in entries] == [
        ("beta", ["beta.txt"], 404),
        ("alpha", ["alpha.txt"], 200),
    ]
    assert entries[0]["action"] == "POST /knowledge_base/delete_docs" and "does not exist" in entries[0]["detail"]
    admin = api.get("/audit", params={"actor": "admin", "knowledge_base_name": "alpha"}).json()["data"]
    assert {e["action"] for e in admin} >= {
        "POST /knowledge_base/create_knowledge_base",
        "POST /knowledge_base/upload_docs",
    }
    assert admin[-1]["files"] == [] and any(e["files"] == ["alpha.txt"] for e in admin)
    csv_text = api.get("/audit/export").text
    assert csv_text.splitlines()[0] == "id,at,actor,action,kb_name,files,status,detail"
    assert "delete_docs" in csv_text and "alpha.txt" in csv_text
