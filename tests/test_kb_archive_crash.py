"""kill -9 of a real API process in the middle of a KB import: after the restart the half-imported KB is gone,
the KB it came from is untouched, and nothing of the import is left in the data dir."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest
from conftest import wait_job_ended
from crash_harness import (
    KB,
    api_process,
    assert_consistent,
    kill_at,
    restarted,
    search_texts,
    settings_values,
    store_options,
)

pytestmark = pytest.mark.integration

IMPORTED = "导入库"
POINTS = ["create:made", "files:stored", "files:committed", "import:batch"]
CASES = [("faiss", point) for point in POINTS] + [(vs, "files:committed") for vs in ("pg", "milvus")]  # one window each


@pytest.mark.parametrize(("vs_type", "point"), CASES, ids=[f"{vs}-{p}" for vs, p in CASES])
def test_a_kill_mid_import_leaves_no_half_kb(
    request: pytest.FixtureRequest, tmp_path: Path, vs_type: str, point: str
) -> None:
    values = settings_values(tmp_path, vs_type, store_options(request, tmp_path, vs_type))
    with restarted(values) as (client, _):
        client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB})
        uploads = [("files", (f"{i}.txt", f"第{i}个文件：苹果和香蕉。".encode(), "text/plain")) for i in range(3)]
        assert client.post("/knowledge_base/upload_docs", data={"knowledge_base_name": KB}, files=uploads).is_success
        archive = client.get("/knowledge_base/export", params={"knowledge_base_name": KB}).content

    def post(http: httpx.Client) -> httpx.Response:
        files = {"file": ("kb.zhiku.zip", archive, "application/zip")}
        return http.post("/knowledge_base/import", data={"knowledge_base_name": IMPORTED}, files=files)

    kill_at(tmp_path, values, point, post)
    with restarted(values) as (client, services):
        names = client.get("/knowledge_base/list_knowledge_bases").json()["data"]
        assert names == [KB]
        assert_consistent(client, services, tmp_path / "data")
        assert "苹果" in " ".join(search_texts(client, "苹果"))
        assert not (tmp_path / "data" / IMPORTED).exists()
        assert list((tmp_path / "data" / ".archives").iterdir()) == []
        again = {"file": ("kb.zhiku.zip", archive, "application/zip")}
        made = client.post("/knowledge_base/import", data={"knowledge_base_name": IMPORTED}, files=again)
        assert made.status_code == 201, made.text


def test_a_kill_mid_way_through_an_import_job_resumes_it(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Another model: the KB is made at once and a job embeds the chunks again; killed after two of its batches,
    the job resumes after the restart and every file is in once, its hand-edited chunk as edited."""
    values = settings_values(tmp_path, "faiss", store_options(request, tmp_path, "faiss"))
    values["jobs"] = {"workers": 1, "batch_files": 2}
    names = [f"{i:02d}.txt" for i in range(6)]
    with restarted(values) as (client, _):
        client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB})
        uploads = [("files", (name, f"文件{name}：marker{name[:2]}。".encode(), "text/plain")) for name in names]
        assert client.post("/knowledge_base/upload_docs", data={"knowledge_base_name": KB}, files=uploads).is_success
        chunk = client.post("/knowledge_base/search_docs", json={"knowledge_base_name": KB, "file_name": names[0]})
        first = chunk.json()[0]
        edit = {first["id"]: {"page_content": "手工修改的分块 edited00。", "metadata": first["metadata"]}}
        client.post("/knowledge_base/update_docs_by_id", json={"knowledge_base_name": KB, "docs": edit})
        archive = client.get("/knowledge_base/export", params={"knowledge_base_name": KB}).content

    marker = tmp_path / "markers" / "files-stored#3"
    with api_process(tmp_path, values, "files:stored#3") as (url, process), httpx.Client(base_url=url) as http:
        form = {"knowledge_base_name": IMPORTED, "embed_model": "hash-alt"}
        reply = http.post("/knowledge_base/import", data=form, files={"file": ("kb.zip", archive)}, timeout=60)
        assert reply.status_code == 202, reply.text
        job_id = reply.json()["data"]["job_id"]
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert time.monotonic() < deadline, "the import job never reached its third write"
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    with restarted(values) as (client, services):
        job = wait_job_ended(client, job_id)
        assert job["state"] == "done" and job["counts"]["done"] == len(names), job
        listed = client.get("/knowledge_base/list_files", params={"knowledge_base_name": IMPORTED}).json()["data"]
        assert sorted(listed) == names
        assert_consistent(client, services, tmp_path / "data")
        body = {"knowledge_base_name": IMPORTED, "file_name": names[0]}
        assert [c["page_content"] for c in client.post("/knowledge_base/search_docs", json=body).json()] == [
            "手工修改的分块 edited00。"
        ]
