"""OCR over the HTTP upload route with the real models: the shared sample scans, the file details that say which
files were scanned, the OCR mode per KB and per upload, background jobs, and bad scans failing one by one while the
rest of the upload goes in. One app (and so one OCR pool) serves the module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_settings, shared_path, wait_job_ended
from fastapi.testclient import TestClient
from ocr_docs import EN_LINES, ZH_LINES, image_bytes, pdf_of, text_image
from PIL import Image

from server.api.app import create_app

KB = "扫描件"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = make_settings(tmp_path_factory.mktemp("ocr_api"), limits={"max_image_pixels": 20_000_000})
    with TestClient(create_app(settings)) as test_client:
        created = test_client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB})
        assert created.status_code == 200 and created.json()["data"]["ocr_mode"] == ""
        yield test_client


def upload(client: TestClient, *files: tuple[str, bytes], kb: str = KB, **form: Any) -> Any:
    parts = [("files", (name, data, "application/octet-stream")) for name, data in files]
    return client.post("/knowledge_base/upload_docs", data={"knowledge_base_name": kb, **form}, files=parts)


def details(client: TestClient, kb: str = KB) -> dict[str, dict[str, Any]]:
    page = client.get("/knowledge_base/list_file_details", params={"knowledge_base_name": kb, "limit": 100}).json()
    return {row["file_name"]: row for row in page["data"]["files"]}


def chunks_of(client: TestClient, file_name: str, kb: str = KB) -> str:
    found = client.post("/knowledge_base/search_docs", json={"knowledge_base_name": kb, "file_name": file_name})
    return "\n".join(chunk["page_content"] for chunk in found.json())


def test_shared_sample_scans_ingest_with_their_text(client: TestClient) -> None:
    names = ["ocr_test.jpg", "ocr_test.pdf", "ocr_test.docx", "ocr_test.pptx"]
    sent = [(f"samples/{name}", shared_path("samples", "formats", name).read_bytes()) for name in names]
    response = upload(client, *sent)
    assert response.status_code == 200 and response.json()["data"]["failed_files"] == {}, response.text
    rows = details(client)
    expected_loaders = ["ImageOcrLoader", "PdfLoader", "DocxLoader", "PptxLoader"]
    for name, loader in zip(names, expected_loaders, strict=True):
        row = rows[f"samples/{name}"]
        assert row["loader"] == loader and row["ocr"] is True, row
        text = chunks_of(client, f"samples/{name}")
        assert "横向文本框" in text and "竖向文本框" in text, (name, text)
    assert "我是文字" in chunks_of(client, "samples/ocr_test.pdf")
    hits = client.post("/knowledge_base/search_docs", json={"knowledge_base_name": KB, "query": "横向文本框"}).json()
    assert hits and any(hit["metadata"].get("ocr") is True for hit in hits)


def test_bad_scans_fail_one_by_one_and_the_rest_goes_in(client: TestClient, tmp_path: Path) -> None:
    from pypdf import PdfWriter

    locked = PdfWriter()
    locked.add_blank_page(100, 100)
    locked.encrypt(user_password="secret", algorithm="RC4-128")
    with (tmp_path / "locked.pdf").open("wb") as out:
        locked.write(out)
    whole = image_bytes(text_image(EN_LINES))
    bomb = image_bytes(Image.new("1", (6000, 5000)))  # 30 M pixels: a few KB packed
    response = upload(
        client,
        ("bad/good.png", whole),
        ("bad/bomb.png", bomb),
        ("bad/dot.png", image_bytes(Image.new("RGB", (1, 1)))),
        ("bad/cut.png", whole[: len(whole) // 2]),
        ("bad/noise.webp", b"RIFF\x00\x00\x00\x00WEBPjunk"),
        ("bad/locked.pdf", (tmp_path / "locked.pdf").read_bytes()),
    )
    assert response.status_code == 200, response.text
    failed = response.json()["data"]["failed_files"]
    assert set(failed) == {"bad/bomb.png", "bad/dot.png", "bad/cut.png", "bad/noise.webp", "bad/locked.pdf"}
    assert "max_image_pixels" in failed["bad/bomb.png"] and "too small" in failed["bad/dot.png"]
    assert "could not be read" in failed["bad/cut.png"] and "not a readable image" in failed["bad/noise.webp"]
    assert "password" in failed["bad/locked.pdf"]
    assert all("Traceback" not in reason and "/tmp/" not in reason for reason in failed.values())
    assert "bad/good.png" in details(client) and "Offline" in chunks_of(client, "bad/good.png")


def test_ocr_mode_per_kb_and_per_upload(client: TestClient) -> None:
    kb = "不识别"
    body = {"knowledge_base_name": kb, "ocr_mode": "never"}
    assert client.post("/knowledge_base/create_knowledge_base", json=body).json()["data"]["ocr_mode"] == "never"
    scan = image_bytes(text_image(ZH_LINES))
    refused = upload(client, ("scan.png", scan), kb=kb)
    assert refused.status_code == 415 and "ocr: never" in refused.json()["msg"], refused.text
    assert upload(client, ("scan.png", scan), kb=kb, ocr="auto").json()["data"]["failed_files"] == {}
    assert details(client, kb)["scan.png"]["ocr"] is True
    bad = upload(client, ("other.png", scan), kb=kb, ocr="sometimes")
    assert bad.status_code == 422 and "ocr" in bad.json()["msg"]
    changed = client.post("/knowledge_base/update_ocr_mode", json={"knowledge_base_name": kb, "ocr_mode": ""})
    assert changed.json()["data"] == {"ocr_mode": ""}
    info = client.get("/knowledge_base/knowledge_base_info", params={"knowledge_base_name": kb}).json()["data"]
    assert info["ocr_mode"] == ""
    wrong = client.post("/knowledge_base/update_ocr_mode", json={"knowledge_base_name": kb, "ocr_mode": "maybe"})
    assert wrong.status_code == 422


def test_scanned_pdf_as_a_background_job(client: TestClient) -> None:
    scanned = pdf_of([text_image(ZH_LINES), "A second page with a text layer long enough to keep"])
    queued = upload(client, ("jobs/scanned.pdf", scanned), background="true")
    assert queued.status_code == 202, queued.text
    job = wait_job_ended(client, queued.json()["data"]["job_id"], timeout=120)
    assert job["state"] == "done", job
    row = details(client)["jobs/scanned.pdf"]
    assert row["ocr"] is True and row["loader"] == "PdfLoader"
    assert "付款" in chunks_of(client, "jobs/scanned.pdf")


def test_background_jobs_and_update_docs_keep_the_kb_ocr_mode(client: TestClient) -> None:
    kb = "任务不识别"
    assert (
        client.post(
            "/knowledge_base/create_knowledge_base", json={"knowledge_base_name": kb, "ocr_mode": "never"}
        ).json()["data"]["ocr_mode"]
        == "never"
    )
    queued = upload(client, ("scan.png", image_bytes(text_image(EN_LINES))), kb=kb, background="true")
    job = wait_job_ended(client, queued.json()["data"]["job_id"], timeout=120)
    assert job["state"] == "failed" and "ocr: never" in job["files"][0]["error"], job
    assert upload(client, ("page.png", image_bytes(text_image(ZH_LINES))), kb=kb, ocr="auto").status_code == 200
    body = {"knowledge_base_name": kb, "file_names": ["page.png"]}
    refused = client.post("/knowledge_base/update_docs", json=body)
    assert refused.status_code == 415 and "ocr: never" in refused.json()["msg"], refused.text
    queued = client.post("/knowledge_base/update_docs", json={**body, "background": True})  # as folder sync does
    job = wait_job_ended(client, queued.json()["data"]["job_id"], timeout=120)
    assert job["state"] == "failed" and "ocr: never" in job["files"][0]["error"], job
    updated = client.post("/knowledge_base/update_docs", json={**body, "ocr": "auto"})
    assert updated.status_code == 200 and details(client, kb)["page.png"]["version"] == 2
