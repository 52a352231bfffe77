"""kill -9 of a real API process in the middle of a FAQ edit: after the restart the FAQ holds the old pairs or the
new ones (before or after the commit point), never a mix, and the KB is consistent."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from crash_harness import KB, assert_consistent, kill_at, restarted, settings_values

from server.loaders.faq import FaqEntry, dump_entries

OLD = [
    FaqEntry("1", ("怎么重置密码？", "忘记密码了"), "旧答案：点忘记密码。"),
    FaqEntry("2", ("如何导出？",), "旧答案：点导出。"),
]
NEW = [{"id": "1", "questions": ["怎么重置密码？"], "answer": "新答案：联系管理员。"}]


def _seed(values: dict[str, object]) -> None:
    with restarted(values) as (client, _):
        client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB})
        files = {"file": ("help.faq.jsonl", dump_entries(OLD), "application/octet-stream")}
        assert (
            client.post("/knowledge_base/import_faq", data={"knowledge_base_name": KB}, files=files).status_code == 201
        )


def _update(http: httpx.Client) -> httpx.Response:
    body = {"knowledge_base_name": KB, "file_name": "help.faq.jsonl", "entries": NEW}
    return http.post("/knowledge_base/update_faq", json=body)


@pytest.mark.parametrize(("point", "committed"), [("files:stored", False), ("files:committed", True)])
def test_a_killed_faq_edit_leaves_the_old_pairs_or_the_new(tmp_path: Path, point: str, committed: bool) -> None:
    values = settings_values(tmp_path, "faiss", {})
    _seed(values)
    kill_at(tmp_path, values, point, _update)
    with restarted(values) as (client, services):
        assert_consistent(client, services, tmp_path / "data")
        listed = client.get("/knowledge_base/list_faq", params={"knowledge_base_name": KB}).json()["data"]
        answers = [entry["answer"] for entry in listed[0]["entries"]]
        assert answers == (["新答案：联系管理员。"] if committed else ["旧答案：点忘记密码。", "旧答案：点导出。"])
        body = {"knowledge_base_name": KB, "query": "", "file_name": "help.faq.jsonl"}
        chunk_answers = {
            doc["metadata"]["answer"] for doc in client.post("/knowledge_base/search_docs", json=body).json()
        }
        assert chunk_answers == set(answers)  # the store agrees with the file: no chunk of the other version
