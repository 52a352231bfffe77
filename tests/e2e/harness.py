"""Browser-test harness: the API (real uvicorn), Streamlit (a subprocess) and headless Debian chromium."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import insert

from configs import Settings
from server.bootstrap import build_services
from server.db.models import KnowledgeFile
from server.db.repository import require_kb

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "webui"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_browser() -> None:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is missing: apt-get install chromium fonts-wqy-microhei (scripts/system_deps.sh)")
    pytest.importorskip("playwright.sync_api", reason="pip install -r requirements-test.txt (playwright)")


def seed_synthetic_files(settings: Settings, kb_name: str, count: int) -> None:
    """A KB whose registry holds `count` synthetic file rows (no content, no vectors): for paging speed."""
    services = build_services(settings)
    try:
        services.knowledge_bases.create(kb_name, info="synthetic rows for the 5,000-file render test")
        with services.catalog.session() as session:
            kb_id = require_kb(session, kb_name).id
            rows: list[dict[str, Any]] = [
                {
                    "kb_id": kb_id,
                    "file_name": f"文档/{i:05d}.md",
                    "ext": "md",
                    "size": 1000 + i,
                    "loader": "markdown",
                    "splitter": "chinese",
                    "chunk_size": 250,
                    "chunk_overlap": 50,
                    "chunk_count": i % 37,
                }
                for i in range(count)
            ]
            session.execute(insert(KnowledgeFile), rows)
    finally:
        services.close()


def write_ui_config(path: Path, api_url: str, values: dict[str, Any]) -> Path:
    """The Streamlit process's settings: the test's models and defaults, pointing the UI at the test API."""
    config = {key: (str(value) if isinstance(value, Path) else value) for key, value in values.items()}
    config["webui"] = {"api_base_url": api_url, "language": "zh"}
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


@contextmanager
def streamlit_server(config_file: Path, port: int, log_file: Path) -> Iterator[str]:
    """`streamlit run webui.py` on `port`; yields its URL once it answers its health check."""
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "webui.py",
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.address",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    env = {**os.environ, "ZHIKU_CONFIG": str(config_file)}
    with log_file.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_healthy(url, process, log_file)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log_file: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited: {log_file.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=1).text.strip() == "ok":
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"streamlit did not start in 60 s: {log_file.read_text(errors='replace')[-2000:]}")
