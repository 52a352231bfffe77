"""Helpers of the crash tests: a real API process stopped at a write-path point and killed there with SIGKILL,
and a check that a knowledge base is consistent after the restart (which is what recovers it)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import HASH_MODELS, free_port, wait_healthy
from fastapi.testclient import TestClient

from configs import Settings, load_settings
from server.api.app import create_app
from server.bootstrap import Services
from server.db.models import PendingWrite

REPO = Path(__file__).resolve().parents[1]
KB = "崩溃测试"


def store_options(request: pytest.FixtureRequest, tmp_path: Path, vs_type: str) -> dict[str, Any]:
    """The vector_stores settings a crash test of `vs_type` needs (a fresh PostgreSQL database for pg)."""
    if vs_type == "milvus":
        pytest.importorskip("milvus_lite")
        return {"milvus": {"uri": str(tmp_path / "data" / "milvus.db")}}
    if vs_type == "pg":
        return {"pg": {"uri": request.getfixturevalue("pg_database")}}
    return {}


def settings_values(root: Path, vs_type: str, store_options: dict[str, Any]) -> dict[str, Any]:
    return {
        "data_dir": str(root / "data"),
        "log_level": "WARNING",
        "embed_models": HASH_MODELS,
        "kb": {"default_embed_model": "hash", "default_vs_type": vs_type},
        "vector_stores": store_options,
    }


def settings_of(values: dict[str, Any]) -> Settings:
    return load_settings(**values)


@dataclass
class KilledAt:
    """What the killed request was doing: its point, and whether it got an answer before the kill (it must not)."""

    point: str
    answered: list[int] = field(default_factory=list)


@contextlib.contextmanager
def api_process(root: Path, values: dict[str, Any], pause_at: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`python -m server.api` on a free port, its writes stopping at `pause_at`; yields its URL and process."""
    config = {**values, "crash_test": {"pause_at": [pause_at], "marker_dir": str(root / "markers")}}
    path = root / "crash.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    port = free_port()
    env = {**os.environ, "ZHIKU_CONFIG": str(path), "OMP_NUM_THREADS": "1"}
    with (root / "api.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "server.api", "--port", str(port)], cwd=REPO, env=env, stdout=log, stderr=log
        )
        try:
            wait_healthy(f"http://127.0.0.1:{port}", process, root / "api.log", what="API", timeout=90)
            yield f"http://127.0.0.1:{port}", process
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)


def kill_at(
    root: Path, values: dict[str, Any], point: str, request: Callable[[httpx.Client], httpx.Response]
) -> KilledAt:
    """Run `request` against a server that stops at `point`, then kill -9 the server there."""
    killed = KilledAt(point)
    marker = root / "markers" / point.replace(":", "-")
    marker.unlink(missing_ok=True)
    with api_process(root, values, point) as (url, process):

        def call() -> None:
            with httpx.Client(base_url=url, timeout=120) as http, contextlib.suppress(httpx.HTTPError):
                killed.answered.append(request(http).status_code)

        thread = threading.Thread(target=call, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not marker.exists():
            if time.monotonic() > deadline or not thread.is_alive():
                raise AssertionError(f"the write never reached {point}; answered {killed.answered}")
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        thread.join(timeout=30)
    assert killed.answered == [], f"the request was answered before the kill at {point}"
    return killed


@contextlib.contextmanager
def restarted(values: dict[str, Any]) -> Iterator[tuple[TestClient, Services]]:
    """The app started again on the same data (its start-up runs the recovery), in this process."""
    with TestClient(create_app(settings_of(values))) as client:
        yield client, client.app.state.services  # type: ignore[attr-defined]


def search_texts(client: TestClient, query: str, kb: str = KB) -> list[str]:
    texts = []
    for mode in ("dense", "keyword"):
        body = {"knowledge_base_name": kb, "query": query, "top_k": 50, "search_mode": mode}
        response = client.post("/knowledge_base/search_docs", json=body)
        assert response.status_code == 200, response.text
        texts += [hit["page_content"] for hit in response.json()]
    return texts


def assert_consistent(client: TestClient, services: Services, data_dir: Path) -> None:
    """The registry, the store, the keyword index and the content folder agree, and nothing is left over."""
    assert services.core.recovery.failed == [], services.core.recovery
    with services.catalog.session() as session:
        assert session.query(PendingWrite).count() == 0
    for name in services.knowledge_bases.list_names():
        _assert_kb_consistent(client, services, name)
    leftovers = [
        p.relative_to(data_dir)
        for p in data_dir.rglob("*")
        if (p.name.endswith((".tmp", ".building")) or p.name == ".staging") and "milvus.db" not in p.parts
    ]
    assert leftovers == []


def _assert_kb_consistent(client: TestClient, services: Services, name: str) -> None:
    kb = services.catalog.require(name)
    ids = services.catalog.chunk_ids(kb)
    store = services.storage.store(kb)
    assert store.count() == len(ids), f"{name}: the store holds {store.count()} chunks, the registry {len(ids)}"
    assert {chunk.id for chunk in store.get(ids)} == set(ids)
    keywords = services.core.keywords.index(name, kb.vs_collection)
    assert set(keywords.ids()) == set(ids), f"{name}: the keyword index disagrees with the registry"
    for row in services.files.file_details(name, limit=1000)[1]:
        body = {"knowledge_base_name": name, "query": "", "file_name": row.file_name}
        chunks = client.post("/knowledge_base/search_docs", json=body).json()
        assert len(chunks) == row.chunk_count > 0, f"{name}/{row.file_name} is listed without its chunks"
        params = {"knowledge_base_name": name, "file_name": row.file_name}
        content = client.get("/knowledge_base/download_doc", params=params)
        assert content.status_code == 200, f"{name}/{row.file_name} is listed, its file is not there"
        if not row.custom_docs:  # hand-edited chunks need not be in the file
            first = chunks[0]["page_content"].split("。")[0].split("\n")[0]  # a line: JSON files escape new lines
            assert first in content.text, f"{name}/{row.file_name}: the chunks are of another version of the file"
    root = services.storage.kb_dir(name)
    vectors = root / "vector_store"
    stores = sorted(p.relative_to(vectors).as_posix() for p in vectors.rglob("*") if p.is_dir())
    expected = [kb.embed_model, f"{kb.embed_model}/{kb.vs_collection}"] if kb.vs_type == "faiss" else []
    assert stores == expected, f"{name}: store folders {stores}"
    assert sorted(p.name for p in root.glob("*keyword_index*")) == [f"keyword_index.{kb.vs_collection}.db"]
