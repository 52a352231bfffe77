"""kill -9 of a real API process in the middle of a KB import: after the restart the half-imported KB is gone,
the KB it came from is untouched, and nothing of the import is left in the data dir."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from crash_harness import KB, assert_consistent, kill_at, restarted, search_texts, settings_values, store_options

pytestmark = pytest.mark.integration

IMPORTED = "导入库"
POINTS = ["create:made", "files:stored", "files:committed", "import:batch"]
CASES = [("faiss", point) for point in POINTS] + [("pg", "files:committed")]  # a server store: one commit window


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
