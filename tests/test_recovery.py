"""Start-up recovery on its own: the old layout moved into place, leftovers swept, nothing touched while another
process holds a writer lease (the crash tests kill real servers: tests/test_crash_recovery.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import make_settings
from fastapi.testclient import TestClient

from configs import Settings
from server.api.app import create_app
from server.bootstrap import build_services
from server.db.models import PendingWrite

KB = "恢复"


def _seed(settings: Settings) -> str:
    """A KB with one file; returns its collection name."""
    with TestClient(create_app(settings)) as client:
        client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB})
        files = [("files", ("a.txt", "苹果是一种水果。".encode()))]
        assert (
            client.post("/knowledge_base/upload_docs", data={"knowledge_base_name": KB}, files=files).status_code == 200
        )
        return str(client.app.state.services.catalog.require(KB).vs_collection)  # type: ignore[attr-defined]


def _finds_apple(settings: Settings) -> bool:
    with TestClient(create_app(settings)) as client:
        for mode in ("dense", "keyword"):
            body = {"knowledge_base_name": KB, "query": "苹果", "search_mode": mode}
            if [hit["metadata"]["source"] for hit in client.post("/knowledge_base/search_docs", json=body).json()] != [
                "a.txt"
            ]:
                return False
    return True


def test_a_kb_of_the_old_layout_is_moved_into_place(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    collection = _seed(settings)
    kb_dir = tmp_path / "data" / KB
    model_dir = kb_dir / "vector_store" / "hash"
    (model_dir / collection / "faiss_store.npz").rename(model_dir / "faiss_store.npz")
    (model_dir / collection).rmdir()
    (kb_dir / f"keyword_index.{collection}.db").rename(kb_dir / "keyword_index.db")
    assert _finds_apple(settings)
    assert (model_dir / collection / "faiss_store.npz").is_file() and not (model_dir / "faiss_store.npz").exists()
    assert (kb_dir / f"keyword_index.{collection}.db").is_file() and not (kb_dir / "keyword_index.db").exists()


def test_leftovers_are_swept_and_the_rest_kept(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    collection = _seed(settings)
    kb_dir = tmp_path / "data" / KB
    leftovers = [
        kb_dir / ".staging" / "0123" / "0" / "big.txt",
        kb_dir / "vector_store" / "hash" / "zk_old" / "faiss_store.npz",
        kb_dir / "vector_store" / "other-model" / "zk_x" / "faiss_store.npz",
        kb_dir / "vector_store" / ".building-1234" / "faiss_store.npz",
        kb_dir / "vector_store" / "hash" / collection / ".faiss_store.npz.abc.tmp",
        kb_dir / "keyword_index.zk_old.db",
        kb_dir / f".keyword_index.{collection}.db.1234.building",
    ]
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"left over")
    unregistered = tmp_path / "data" / "文件夹库" / "content" / "note.txt"
    unregistered.parent.mkdir(parents=True)
    unregistered.write_text("a folder KB, not registered yet", encoding="utf-8")
    services = build_services(settings)
    try:
        swept = services.core.recovery.swept
    finally:
        services.close()
    assert not any(path.exists() for path in leftovers), swept
    assert not (kb_dir / ".staging").exists() and not (kb_dir / "vector_store" / "other-model").exists()
    assert (kb_dir / "content" / "a.txt").is_file() and unregistered.is_file()
    assert _finds_apple(settings)


def test_nothing_is_recovered_while_another_process_holds_a_lease(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    _seed(settings)
    services = build_services(settings)
    store = services.storage.ref(services.storage.spec(services.catalog.require(KB)))
    payload = {"store": store, "files": [{"name": "b.txt", "new_ids": ["never-added"], "old_ids": [], "staged": None}]}
    with services.catalog.session() as session:
        session.add(PendingWrite(kb_name=KB, kind="files", state="pending", owner="gone", payload=payload))
        session.add(PendingWrite(kb_name=KB, kind="files", state="pending", owner="gone", payload={"damaged": 1}))
    services.close()
    holder = _lease_holder(tmp_path / "data")
    try:
        services = build_services(settings)
        assert "other processes" in services.core.recovery.skipped
        with services.catalog.session() as session:
            assert session.query(PendingWrite).count() == 2  # left alone: their writer may still be at it
        services.close()
    finally:
        holder.kill()
        holder.wait()
    services = build_services(settings)  # now alone: the entries of the dead process are recovered
    try:
        report = services.core.recovery
        assert report.skipped == "" and len(report.finished) == 1
        assert len(report.failed) == 1  # the damaged entry is kept and logged; start-up goes on
    finally:
        services.close()
    assert _finds_apple(settings)


def _lease_holder(data_dir: Path) -> subprocess.Popen[bytes]:
    """Another process holding a writer lease on `data_dir`, as a running API would."""
    code = (
        "import sys, time; from pathlib import Path; from server.knowledge_base.lease import WriterLease; "
        "lease = WriterLease(Path(sys.argv[1])); lease.acquire(); print('ready', flush=True); time.sleep(600)"
    )
    repo = Path(__file__).resolve().parents[1]
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(data_dir)], cwd=repo, stdout=subprocess.PIPE, env={**os.environ}
    )
    assert process.stdout is not None and process.stdout.readline().strip() == b"ready"
    time.sleep(0.05)
    return process
