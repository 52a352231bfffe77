"""Background ingestion over HTTP: upload_docs background=true, the jobs routes, cancel, retry, bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import make_settings, wait_job_ended
from fastapi.testclient import TestClient

from server.api.app import create_app

KB = "后台库"


def upload(client: TestClient, *files: tuple[str, bytes], kb: str = KB, **form: Any) -> Any:
    parts = [("files", (name, data, "application/octet-stream")) for name, data in files]
    return client.post("/knowledge_base/upload_docs", data={"knowledge_base_name": kb, **form}, files=parts)


def make_client(tmp_path: Path, **jobs: Any) -> TestClient:
    settings = make_settings(tmp_path, jobs={"workers": 2, "batch_files": 3, **jobs})
    return TestClient(create_app(settings))


@pytest.fixture
def client(tmp_path: Path) -> Any:
    with make_client(tmp_path) as test_client:
        assert (
            test_client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB}).status_code
            == 200
        )
        yield test_client


def documents(count: int, prefix: str = "doc") -> list[tuple[str, bytes]]:
    return [(f"{prefix}/{i:03d}.txt", f"第{i}号文档。内容编号 {i} 独一无二 token{i}。".encode()) for i in range(count)]


def test_a_background_upload_answers_202_with_a_job_and_ends_with_every_file_in(client: TestClient) -> None:
    reply = upload(client, *documents(10), background="true")
    assert reply.status_code == 202 and reply.json()["code"] == 202
    job = reply.json()["data"]
    assert job["state"] in ("queued", "running") and job["total_files"] == 10
    ended = wait_job_ended(client, job["job_id"], timeout=30)
    assert ended["state"] == "done" and ended["counts"]["done"] == 10 and ended["progress"] == 1.0
    assert ended["chunks"] >= 10 and ended["eta_s"] == 0.0
    assert {f["state"] for f in ended["files"]} == {"done"}
    listed = client.get("/knowledge_base/list_files", params={"knowledge_base_name": KB}).json()["data"]
    assert sorted(listed) == sorted(name for name, _ in documents(10))
    hits = client.post("/knowledge_base/search_docs", json={"knowledge_base_name": KB, "query": "token7"}).json()
    assert hits[0]["metadata"]["source"] == "doc/007.txt"


def test_jobs_are_listed_by_kb_and_state_and_stream_their_progress(client: TestClient) -> None:
    job_id = upload(client, *documents(4), background="true").json()["data"]["job_id"]
    wait_job_ended(client, job_id, timeout=30)
    listed = client.get("/knowledge_base/jobs", params={"knowledge_base_name": KB}).json()["data"]
    assert [job["job_id"] for job in listed] == [job_id] and listed[0]["files"] is None
    assert client.get("/knowledge_base/jobs", params={"state": "running"}).json()["data"] == []
    assert client.get("/knowledge_base/jobs", params={"knowledge_base_name": "other"}).json()["data"] == []
    with client.stream("GET", f"/knowledge_base/jobs/{job_id}/events") as stream:
        events = [json.loads(line[5:]) for line in stream.iter_lines() if line.startswith("data:")]
    assert events[-1]["state"] == "done" and events[-1]["counts"]["done"] == 4


def test_duplicates_are_skipped_and_names_taken_fail_without_override(client: TestClient) -> None:
    first = upload(client, ("a.txt", "同一个内容".encode()), background="true").json()["data"]["job_id"]
    wait_job_ended(client, first, timeout=30)
    again = upload(client, ("b.txt", "同一个内容".encode()), ("a.txt", "新内容".encode()), background="true")
    ended = wait_job_ended(client, again.json()["data"]["job_id"], timeout=30)
    states = {f["file_name"]: (f["state"], f["error"]) for f in ended["files"]}
    assert states["b.txt"] == ("duplicate", "same content as a.txt")
    assert states["a.txt"][0] == "failed" and "override=true" in states["a.txt"][1]
    assert ended["state"] == "failed"


def test_a_failed_file_is_retried_and_bad_ids_get_a_clear_4xx(client: TestClient) -> None:
    sent = upload(client, ("empty.txt", b"   "), ("ok.txt", "可以读的文本".encode()), background="true")
    job_id = sent.json()["data"]["job_id"]
    ended = wait_job_ended(client, job_id, timeout=30)
    assert ended["state"] == "failed" and ended["counts"] == {**ended["counts"], "failed": 1, "done": 1}
    assert ended["files"][0]["file_name"] == "empty.txt"  # failures come first
    assert "no text could be extracted" in ended["files"][0]["error"]
    only = client.get(f"/knowledge_base/jobs/{job_id}", params={"file_state": "done", "files_limit": 5}).json()
    assert [f["file_name"] for f in only["data"]["files"]] == ["ok.txt"] and only["data"]["total_files"] == 2
    cancel = client.post(f"/knowledge_base/jobs/{job_id}/cancel")
    assert cancel.status_code == 409 and "already ended" in cancel.json()["msg"]
    retried = client.post(f"/knowledge_base/jobs/{job_id}/retry")
    assert retried.status_code == 200 and retried.json()["data"]["counts"]["done"] == 1
    again = wait_job_ended(client, job_id, timeout=30)
    assert (
        again["state"] == "failed" and next(f for f in again["files"] if f["file_name"] == "empty.txt")["attempts"] == 2
    )
    missing = client.get("/knowledge_base/jobs/nope")
    assert missing.status_code == 404 and "GET /knowledge_base/jobs" in missing.json()["msg"]
    assert client.post("/knowledge_base/jobs/nope/cancel").status_code == 404
    assert client.post("/knowledge_base/jobs/nope/retry").status_code == 404
    assert client.get("/knowledge_base/jobs/nope/events").status_code == 404
    assert client.get("/knowledge_base/jobs", params={"state": "exploded"}).status_code == 422


def test_retrying_a_job_with_nothing_failed_is_409(client: TestClient) -> None:
    job_id = upload(client, *documents(2), background="true").json()["data"]["job_id"]
    wait_job_ended(client, job_id, timeout=30)
    reply = client.post(f"/knowledge_base/jobs/{job_id}/retry")
    assert reply.status_code == 409 and "no failed files" in reply.json()["msg"]


def test_cancel_stops_what_is_still_queued(tmp_path: Path) -> None:
    with make_client(tmp_path, workers=0) as client:  # nothing takes the tasks: the job stays queued
        client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB})
        job_id = upload(client, *documents(5), background="true").json()["data"]["job_id"]
        cancelled = client.post(f"/knowledge_base/jobs/{job_id}/cancel").json()["data"]
        assert cancelled["state"] == "cancelled" and cancelled["counts"]["cancelled"] == 5
        assert client.post(f"/knowledge_base/jobs/{job_id}/cancel").status_code == 409
        assert client.post(f"/knowledge_base/jobs/{job_id}/retry").status_code == 409
        assert client.get("/knowledge_base/list_files", params={"knowledge_base_name": KB}).json()["data"] == []
        assert not any((tmp_path / "data" / ".jobs" / job_id).rglob("*.txt"))


def test_deleting_a_kb_cancels_its_jobs_and_keeps_the_others(tmp_path: Path) -> None:
    with make_client(tmp_path, workers=0) as client:
        for name in (KB, "别的库"):
            client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": name})
        doomed = upload(client, *documents(3), background="true").json()["data"]["job_id"]
        kept = upload(client, *documents(2), kb="别的库", background="true").json()["data"]["job_id"]
        assert client.post("/knowledge_base/delete_knowledge_base", json=KB).status_code == 200
        assert client.get(f"/knowledge_base/jobs/{doomed}").json()["data"]["state"] == "cancelled"
        assert client.get(f"/knowledge_base/jobs/{kept}").json()["data"]["state"] == "queued"
        assert not any((tmp_path / "data" / ".jobs" / doomed).rglob("*.txt"))


def test_bad_background_requests_are_refused_before_anything_is_queued(client: TestClient) -> None:
    missing = upload(client, ("a.txt", b"x"), kb="没有这个库", background="true")
    assert missing.status_code == 404
    docs = upload(client, ("a.txt", b"x"), background="true", docs=json.dumps({"a.txt": [{"page_content": "x"}]}))
    assert docs.status_code == 422 and "background" in docs.json()["msg"]
    bad_name = upload(client, ("../evil.txt", b"x"), background="true")
    assert bad_name.status_code == 422
    assert client.get("/knowledge_base/jobs").json()["data"] == []


def test_update_docs_in_the_background_re_embeds_files_of_the_folder(client: TestClient) -> None:
    upload(client, ("notes.txt", "旧的笔记".encode()))
    content = Path(client.app.state.services.storage.content_path(KB, "notes.txt"))  # type: ignore[attr-defined]
    content.write_text("新的笔记 updated", encoding="utf-8")
    reply = client.post(
        "/knowledge_base/update_docs", json={"knowledge_base_name": KB, "file_names": ["notes.txt"], "background": True}
    )
    assert reply.status_code == 202
    assert wait_job_ended(client, reply.json()["data"]["job_id"], timeout=30)["state"] == "done"
    hits = client.post("/knowledge_base/search_docs", json={"knowledge_base_name": KB, "query": "updated"}).json()
    assert hits and "新的笔记" in hits[0]["page_content"]
