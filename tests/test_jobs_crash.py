"""kill -9 of a real API process in the middle of a background job, on every store; after a restart the job resumes
with the files that are not done: none is half in the store, none twice, and none that finished is redone."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import wait_job_ended
from crash_harness import KB, api_process, assert_consistent, restarted, settings_values, store_options

pytestmark = pytest.mark.integration

FILES = {f"批次/{i:02d}.txt": f"第{i}号文件。编号{i}的内容 marker{i}。".encode() for i in range(10)}
BATCH = 2


def _start_and_kill(tmp_path: Path, values: dict[str, Any], point: str) -> tuple[str, dict[str, Any]]:
    """Upload FILES as a job to a server whose third commit stops at `point`, kill -9 it there; returns the job id
    and what the job showed just before the kill."""
    marker = tmp_path / "markers" / point.replace(":", "-")
    with api_process(tmp_path, values, point) as (url, process), httpx.Client(base_url=url, timeout=30) as http:
        parts = [("files", (name, data)) for name, data in FILES.items()]
        started = time.monotonic()
        reply = http.post(
            "/knowledge_base/upload_docs", data={"knowledge_base_name": KB, "background": "true"}, files=parts
        )
        assert reply.status_code == 202 and time.monotonic() - started < 2, reply.text
        job_id = reply.json()["data"]["job_id"]
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert time.monotonic() < deadline, f"the job never reached {point}"
            time.sleep(0.02)
        before = http.get(f"/knowledge_base/jobs/{job_id}").json()["data"]
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    return job_id, before


CASES = [
    ("faiss", "files:stored#3"),
    ("faiss", "files:committed#3"),
    ("milvus", "files:stored#3"),
    ("pg", "files:stored#3"),
]


@pytest.mark.parametrize(("vs_type", "point"), CASES, ids=[f"{vs}-{p}" for vs, p in CASES])
def test_a_job_killed_mid_way_resumes_and_ingests_every_file_once(
    request: pytest.FixtureRequest, tmp_path: Path, vs_type: str, point: str
) -> None:
    values = settings_values(tmp_path, vs_type, store_options(request, tmp_path, vs_type))
    values["jobs"] = {"workers": 1, "batch_files": BATCH}
    with restarted(values) as (client, _):
        assert client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB}).status_code == 200
    job_id, before = _start_and_kill(tmp_path, values, point)
    done_before = {f["file_name"] for f in before["files"] if f["state"] == "done"}
    committed = point.startswith("files:committed")
    # two batches written, the third stopped inside its commit: before its transaction, or right after it
    assert len(done_before) == (3 if committed else 2) * BATCH, before

    with restarted(values) as (client, services):
        job = wait_job_ended(client, job_id)
        assert job["state"] == "done" and job["counts"]["done"] == len(FILES), job
        attempts = {f["file_name"]: f["attempts"] for f in job["files"]}
        assert all(attempts[name] == 1 for name in done_before), "a file that was done was ingested again"
        redone = {name for name, count in attempts.items() if count == 2}
        assert len(redone) == (0 if committed else BATCH), attempts  # only the batch that was not committed
        listed = client.get("/knowledge_base/list_files", params={"knowledge_base_name": KB}).json()["data"]
        assert sorted(listed) == sorted(FILES)
        assert_consistent(client, services, tmp_path / "data")
        for index in (0, 5, 9):
            body = {"knowledge_base_name": KB, "query": f"marker{index}", "search_mode": "keyword", "top_k": 20}
            hits = client.post("/knowledge_base/search_docs", json=body).json()
            sources = [hit["metadata"]["source"] for hit in hits if f"marker{index}" in hit["page_content"]]
            assert sources == [f"批次/{index:02d}.txt"], f"marker{index}: {sources}"
        assert not any((tmp_path / "data" / ".jobs" / job_id).rglob("*.txt")), "staged bytes were left behind"
