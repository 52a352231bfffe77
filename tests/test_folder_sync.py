"""Folder sync: a KB that follows its content/ folder picks up new, changed and deleted files within seconds while
the app runs (a real watchfiles watcher); files with the content of one already in the KB are duplicates."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_settings
from fastapi.testclient import TestClient

from server.api.app import create_app

KB = "同步库"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(tmp_path, jobs={"workers": 1, "sync_debounce_ms": 100})
    with TestClient(create_app(settings)) as test_client:
        assert (
            test_client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB}).status_code
            == 200
        )
        yield test_client


def content(client: TestClient) -> Path:
    folder = client.app.state.services.storage.content_path(KB, "x").parent  # type: ignore[attr-defined]
    folder.mkdir(parents=True, exist_ok=True)
    return Path(folder)


def files_of(client: TestClient) -> list[str]:
    return sorted(client.get("/knowledge_base/list_files", params={"knowledge_base_name": KB}).json()["data"])


def found(client: TestClient, query: str) -> list[str]:
    body = {"knowledge_base_name": KB, "query": query, "search_mode": "keyword", "top_k": 10}
    return [hit["page_content"] for hit in client.post("/knowledge_base/search_docs", json=body).json()]


def eventually(check: Callable[[], Any], timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_a_synced_kb_follows_new_changed_and_deleted_files(client: TestClient) -> None:
    folder = content(client)
    (folder / "old.txt").write_text("开启同步之前就在的文件 before", encoding="utf-8")
    turned = client.post("/knowledge_base/update_folder_sync", json={"knowledge_base_name": KB, "sync_folder": True})
    assert turned.status_code == 200 and turned.json()["data"]["scan"]["queued"] == ["old.txt"]
    assert eventually(lambda: files_of(client) == ["old.txt"])
    (folder / "notes").mkdir()
    (folder / "notes" / "new.md").write_text("# 新文件\n\n同步进来的新文件 alpha", encoding="utf-8")
    assert eventually(lambda: files_of(client) == ["notes/new.md", "old.txt"]), files_of(client)
    assert eventually(lambda: any("alpha" in text for text in found(client, "alpha")))
    (folder / "notes" / "new.md").write_text("# 新文件\n\n改过之后的内容 omega", encoding="utf-8")
    assert eventually(lambda: any("omega" in text for text in found(client, "omega")))
    assert not any("alpha" in text for text in found(client, "alpha")), "the old version is still searchable"
    (folder / "old.txt").unlink()
    assert eventually(lambda: files_of(client) == ["notes/new.md"]), files_of(client)
    assert not found(client, "before")
    kb = client.get("/knowledge_base/knowledge_base_info", params={"knowledge_base_name": KB}).json()["data"]
    assert kb["sync_folder"] is True


def test_a_copy_under_another_name_is_reported_as_a_duplicate(client: TestClient) -> None:
    folder = content(client)
    client.post("/knowledge_base/update_folder_sync", json={"knowledge_base_name": KB, "sync_folder": True})
    (folder / "a.txt").write_text("一模一样的内容", encoding="utf-8")
    assert eventually(lambda: files_of(client) == ["a.txt"])
    (folder / "copy.txt").write_text("一模一样的内容", encoding="utf-8")

    def duplicate() -> bool:
        jobs = client.get("/knowledge_base/jobs", params={"knowledge_base_name": KB}).json()["data"]
        return any(job["counts"]["duplicate"] == 1 for job in jobs)

    assert eventually(duplicate)
    assert files_of(client) == ["a.txt"]
    job = client.get("/knowledge_base/jobs", params={"knowledge_base_name": KB}).json()["data"][0]
    detail = client.get(f"/knowledge_base/jobs/{job['job_id']}").json()["data"]
    assert detail["files"][0] == {**detail["files"][0], "file_name": "copy.txt", "error": "same content as a.txt"}


def test_without_sync_nothing_happens_until_a_one_off_scan(client: TestClient) -> None:
    folder = content(client)
    (folder / "later.txt").write_text("等用户手动扫描", encoding="utf-8")
    (folder / "tool.exe").write_bytes(b"MZ")  # no loader reads it: not queued to fail again and again
    time.sleep(0.5)
    assert files_of(client) == []
    report = client.post("/knowledge_base/sync_folder", json={"knowledge_base_name": KB}).json()["data"]
    assert report["queued"] == ["later.txt"] and report["job_id"]
    assert eventually(lambda: files_of(client) == ["later.txt"])
    again = client.post("/knowledge_base/sync_folder", json={"knowledge_base_name": KB}).json()["data"]
    assert again == {**again, "queued": [], "removed": [], "unchanged": 1, "job_id": None}
    missing = client.post("/knowledge_base/sync_folder", json={"knowledge_base_name": "没有"})
    assert missing.status_code == 404
