"""Scale-out: the API and separate job workers (`python -m server.job_worker`) on one Redis queue, a PostgreSQL
registry and pgvector KBs. Each file is ingested exactly once, and a worker killed with SIGKILL mid-job has its
files finished by the other, its half-written batch undone while the rest keeps running."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import HASH_MODELS, free_port, wait_healthy, wait_job_ended
from crash_harness import assert_consistent, restarted
from sqlalchemy import create_engine, text

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
KB = "共享库"


def _values(root: Path, pg: str, redis_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "data_dir": str(root / "data"),
        "database_url": pg,
        "log_level": "INFO",
        "embed_models": HASH_MODELS,
        "kb": {"default_embed_model": "hash", "default_vs_type": "pg"},
        "vector_stores": {"pg": {"uri": pg}},
        "jobs": {"queue": "redis", "redis_url": redis_url, "workers": 0, "batch_files": 1, "reclaim_interval_s": 0.5},
        **extra,
    }


@contextlib.contextmanager
def _process(root: Path, name: str, values: dict[str, Any], args: list[str]) -> Iterator[subprocess.Popen[bytes]]:
    config = root / f"{name}.yaml"
    config.write_text(yaml.safe_dump(values, allow_unicode=True), encoding="utf-8")
    env = {**os.environ, "ZHIKU_CONFIG": str(config), "OMP_NUM_THREADS": "1"}
    with (root / f"{name}.log").open("ab") as log:
        process = subprocess.Popen([sys.executable, "-m", *args], cwd=REPO, env=env, stdout=log, stderr=log)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)


def _wait_log(root: Path, name: str, needle: str, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    log = root / f"{name}.log"
    while needle not in (log.read_text(errors="replace") if log.exists() else ""):
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{name} did not say {needle!r}: {log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.05)


def _owners(pg: str, job_id: str) -> dict[str, str]:
    engine = create_engine(pg)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT file_name, owner FROM ingest_job_file WHERE job_id = :j"), {"j": job_id})
            return {name: owner.split("/")[0] for name, owner in rows}
    finally:
        engine.dispose()


def _files(count: int) -> list[tuple[str, tuple[str, bytes]]]:
    return [("files", (f"f{i:02d}.txt", f"第{i}号文件。共享队列 item{i}。".encode())) for i in range(count)]


@pytest.fixture
def queue(redis_url: str) -> str:
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    return redis_url


@contextlib.contextmanager
def _api(root: Path, values: dict[str, Any]) -> Iterator[str]:
    """The API (no job workers of its own) on a free port; yields its URL once it is healthy."""
    port = free_port()
    with _process(root, "api", values, ["server.api", "--port", str(port)]) as api:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, api, root / "api.log", what="API", timeout=90)
        yield url


def test_two_workers_share_one_queue_and_ingest_each_file_once(tmp_path: Path, pg_database: str, queue: str) -> None:
    values = _values(tmp_path, pg_database, queue)
    with (
        _api(tmp_path, values) as url,
        _process(tmp_path, "w1", values, ["server.job_worker", "--threads", "1"]) as w1,
        _process(tmp_path, "w2", values, ["server.job_worker", "--threads", "1"]) as w2,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        _wait_log(tmp_path, "w1", "job worker ready", w1)
        _wait_log(tmp_path, "w2", "job worker ready", w2)
        assert http.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB}).status_code == 200
        reply = http.post(
            "/knowledge_base/upload_docs", data={"knowledge_base_name": KB, "background": "true"}, files=_files(40)
        )
        assert reply.status_code == 202, reply.text
        job = wait_job_ended(http, reply.json()["data"]["job_id"], timeout=90)
        assert job["state"] == "done" and job["counts"]["done"] == 40, job
        assert {f["attempts"] for f in job["files"]} == {1}, "a file was taken twice"
        owners = _owners(pg_database, job["job_id"])
        assert len(set(owners.values())) == 2, f"one worker did all the work: {owners}"
        with restarted(values) as (client, services):
            assert_consistent(client, services, tmp_path / "data")
            assert (
                len(client.get("/knowledge_base/list_files", params={"knowledge_base_name": KB}).json()["data"]) == 40
            )


def test_a_worker_killed_mid_job_leaves_its_files_to_the_other(tmp_path: Path, pg_database: str, queue: str) -> None:
    values = _values(tmp_path, pg_database, queue)
    doomed = {**values, "crash_test": {"pause_at": ["files:stored#2"], "marker_dir": str(tmp_path / "markers")}}
    with _api(tmp_path, values) as url:
        with httpx.Client(base_url=url, timeout=30) as http:
            assert (
                http.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB}).status_code == 200
            )
            with _process(tmp_path, "doomed", doomed, ["server.job_worker", "--threads", "1"]) as victim:
                _wait_log(tmp_path, "doomed", "job worker ready", victim)
                reply = http.post(
                    "/knowledge_base/upload_docs",
                    data={"knowledge_base_name": KB, "background": "true"},
                    files=_files(12),
                )
                job_id = reply.json()["data"]["job_id"]
                deadline = time.monotonic() + 60
                while not (tmp_path / "markers" / "files-stored#2").exists():
                    assert time.monotonic() < deadline, "the worker never reached its second commit"
                    time.sleep(0.02)
                os.kill(victim.pid, signal.SIGKILL)
                victim.wait(timeout=30)
            with _process(tmp_path, "survivor", values, ["server.job_worker", "--threads", "1"]):
                job = wait_job_ended(http, job_id, timeout=90)
            assert job["state"] == "done" and job["counts"]["done"] == 12, job
            attempts = sorted(f["attempts"] for f in job["files"])
            assert attempts == [1] * 11 + [2], attempts  # only the file killed inside its commit was redone
        with restarted(values) as (client, services):
            assert_consistent(client, services, tmp_path / "data")
