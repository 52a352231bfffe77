"""Every file in ../shared/samples goes through the real upload pipeline: it ingests or is refused with a reason."""

from __future__ import annotations

import pytest
from conftest import shared_path
from fastapi.testclient import TestClient

pytestmark = pytest.mark.integration


def test_every_sample_ingests_or_is_refused_with_a_reason(client: TestClient) -> None:
    samples = shared_path("samples")
    assert client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": "样例"}).status_code == 200
    paths = sorted(p for p in samples.rglob("*") if p.is_file())
    parts = [("files", (p.relative_to(samples).as_posix(), p.read_bytes())) for p in paths]
    response = client.post("/knowledge_base/upload_docs", data={"knowledge_base_name": "样例"}, files=parts)
    assert response.status_code == 200, response.text
    failed = response.json()["data"]["failed_files"]
    for name, reason in failed.items():
        assert name.rsplit("/", 1)[-1] in reason or "OCR" in reason, (name, reason)
    assert failed == {}, failed  # the scans among them too: OCR reads them
    details = client.get(
        "/knowledge_base/list_file_details", params={"knowledge_base_name": "样例", "limit": 1000}
    ).json()["data"]
    assert details["total"] == len(paths) - len(failed)
    assert all(row["chunk_count"] > 0 for row in details["files"])
    hits = client.post(
        "/knowledge_base/search_docs", json={"knowledge_base_name": "样例", "query": "核电厂定期安全审查"}
    )
    assert hits.status_code == 200 and hits.json()
