"""kill -9 of a real API process at every point of the write path, on every store; after a restart the knowledge
base is consistent: each listed file's chunks are there, no chunk of a replaced, deleted or never-committed file is
in any store or keyword index, no journal entry or leftover remains (docs/write-path.md)."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
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

OLD_A = "苹果是一种红色的水果。苹果树在春天开花。"
NEW_A = "香蕉是黄色的热带水果。香蕉含有丰富的钾。"
B_TEXT = "北京是中国的首都。长城在北京的北边。"
OTHERS = {f"extra{i}.txt": f"第{i}号补充文件。内容是编号{i}的说明。" for i in range(6)}


def _seed(values: dict[str, Any]) -> None:
    """The KB the crashes happen to: a.txt (to replace or delete) and b.txt (to edit), in the registry and stores."""
    with restarted(values) as (client, _):
        assert client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB}).status_code == 200
        files = [("files", ("a.txt", OLD_A.encode())), ("files", ("b.txt", B_TEXT.encode()))]
        response = client.post("/knowledge_base/upload_docs", data={"knowledge_base_name": KB}, files=files)
        assert response.status_code == 200, response.text


def _override(http: httpx.Client) -> httpx.Response:
    files = [("files", ("a.txt", NEW_A.encode()))] + [("files", (n, t.encode())) for n, t in OTHERS.items()]
    return http.post("/knowledge_base/upload_docs", data={"knowledge_base_name": KB, "override": "true"}, files=files)


def _delete(http: httpx.Client) -> httpx.Response:
    body = {"knowledge_base_name": KB, "file_names": ["a.txt"], "delete_content": True}
    return http.post("/knowledge_base/delete_docs", json=body)


def _rebuild(http: httpx.Client) -> httpx.Response:
    return http.post("/knowledge_base/recreate_vector_store", json={"knowledge_base_name": KB})


def _edit(http: httpx.Client) -> httpx.Response:
    body = {"knowledge_base_name": KB, "query": "", "file_name": "b.txt"}
    chunk = http.post("/knowledge_base/search_docs", json=body).json()[0]
    edit = {chunk["id"]: {"page_content": "上海是一座港口城市。", "metadata": chunk["metadata"]}}
    return http.post("/knowledge_base/update_docs_by_id", json={"knowledge_base_name": KB, "docs": edit})


def _create(http: httpx.Client) -> httpx.Response:
    return http.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": "新建库"})


def _drop(http: httpx.Client) -> httpx.Response:
    return http.post("/knowledge_base/delete_knowledge_base", json=KB)


OPERATIONS: dict[str, Callable[[httpx.Client], httpx.Response]] = {
    "files": _override,
    "remove": _delete,
    "rebuild": _rebuild,
    "edit": _edit,
    "create": _create,
    "drop": _drop,
}
EVERY_POINT = [
    "files:journaled", "files:stored", "files:committed", "files:old-removed", "files:moved",
    "remove:committed", "remove:purged",
    "rebuild:journaled", "rebuild:built", "rebuild:switched", "rebuild:old-dropped",
    "edit:committed", "create:made", "drop:committed",
]  # fmt: skip
# The commit windows of each kind of write, for the server stores (FAISS gets every point).
KEY_POINTS = ["files:stored", "files:committed", "remove:committed", "rebuild:built", "rebuild:switched"]
CASES = [("faiss", p) for p in EVERY_POINT] + [(vs, p) for vs in ("milvus", "pg") for p in KEY_POINTS]


@pytest.mark.parametrize(("vs_type", "point"), CASES, ids=[f"{vs}-{p}" for vs, p in CASES])
def test_a_kill_at_each_point_leaves_a_consistent_kb(
    request: pytest.FixtureRequest, tmp_path: Path, vs_type: str, point: str
) -> None:
    values = settings_values(tmp_path, vs_type, store_options(request, tmp_path, vs_type))
    _seed(values)
    kill_at(tmp_path, values, point, OPERATIONS[point.split(":")[0]])
    with restarted(values) as (client, services):
        assert services.core.recovery.finished, "the restart found nothing to recover"
        assert_consistent(client, services, tmp_path / "data")
        _assert_outcome(client, point)


def _assert_outcome(client: Any, point: str) -> None:
    """Before its commit a write is absent after the restart; after it, whole."""
    kind, stage = point.split(":")
    committed = stage not in ("journaled", "stored", "built", "made")
    names = client.get("/knowledge_base/list_knowledge_bases").json()["data"]
    if kind == "create":
        assert "新建库" not in names
        return
    if kind == "drop":
        assert KB not in names
        return
    texts = " ".join(search_texts(client, "苹果 香蕉 北京 上海 补充文件"))
    files = client.get("/knowledge_base/list_files", params={"knowledge_base_name": KB}).json()["data"]
    if kind == "files":
        assert ("香蕉" in texts, "苹果" in texts) == ((True, False) if committed else (False, True))
        assert sorted(files) == sorted(["a.txt", "b.txt", *(OTHERS if committed else [])])
    elif kind == "remove":
        assert "苹果" not in texts and files == ["b.txt"]
    elif kind == "edit":
        assert "上海" in texts and "长城" not in texts
    else:  # rebuild: the same files either way
        assert sorted(files) == ["a.txt", "b.txt"] and "苹果" in texts and "北京" in texts


def test_kills_at_random_moments_of_big_uploads(tmp_path: Path) -> None:
    """No chosen point: five uploads of 40 files with override, each killed at a random moment."""
    values = settings_values(tmp_path, "faiss", {})
    _seed(values)
    rng = random.Random(7)
    files = [("files", (f"bulk{i}.txt", f"批量文件{i}。第{i}段内容。".encode() * 20)) for i in range(40)]
    for _ in range(5):
        server = api_process(tmp_path, values, pause_at="never")
        with server as (url, process), httpx.Client(base_url=url, timeout=120) as http:
            data = {"knowledge_base_name": KB, "override": "true", "chunk_size": "30", "chunk_overlap": "5"}
            upload = _start(http, data, files)
            time.sleep(rng.uniform(0.05, 1.5))
            process.kill()
            upload.join(timeout=30)
        with restarted(values) as (client, services):
            assert_consistent(client, services, tmp_path / "data")


def _start(http: httpx.Client, data: dict[str, str], files: list[Any]) -> threading.Thread:
    def call() -> None:
        with contextlib.suppress(httpx.HTTPError):
            http.post("/knowledge_base/upload_docs", data=data, files=files)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    return thread
