"""Hostile and broken input: each is refused with a clear 4xx, within bounded time and memory, and no answer shows a
stack trace or a place on the server's disk."""

from __future__ import annotations

import json
import os
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import make_settings
from fastapi.testclient import TestClient

from server.api.app import create_app

KB = "敌意"
MB = 1024 * 1024


def upload(client: TestClient, *files: tuple[str, bytes], **form: Any) -> Any:
    parts = [("files", (name, data, "application/octet-stream")) for name, data in files]
    return client.post("/knowledge_base/upload_docs", data={"knowledge_base_name": KB, **form}, files=parts)


def assert_clean(response: Any, status: int, *fragments: str) -> dict[str, Any]:
    """A 4xx envelope with a readable reason: no stack trace, no absolute path, no 5xx."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    text = response.text
    assert body["code"] == status and "Traceback" not in text
    assert "/tmp/" not in text and os.getcwd() not in text and str(Path.home()) + "/" not in text, text
    for fragment in fragments:
        assert fragment in text, text
    return body


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(tmp_path, limits={"max_rows_per_sheet": 1000, "max_zip_members": 500})
    with TestClient(create_app(settings)) as test_client:
        assert (
            test_client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB}).status_code
            == 200
        )
        yield test_client


def _zip(path: Path, members: dict[str, bytes | int]) -> bytes:
    """A zip whose members are given bytes, or (an int) that many zero bytes streamed in, which deflate packs about
    a thousandfold."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            if isinstance(content, bytes):
                archive.writestr(name, content)
                continue
            with archive.open(name, "w", force_zip64=True) as member:
                block = b"\0" * MB
                for _ in range(content // MB):
                    member.write(block)
    return path.read_bytes()


class _Searching:
    """Searches in a thread, timing each, until stopped."""

    def __init__(self, client: TestClient) -> None:
        self._client, self._done, self.seconds = client, threading.Event(), [0.0]
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.is_set():
            started = time.perf_counter()
            self._client.post("/knowledge_base/search_docs", json={"knowledge_base_name": KB, "query": "文件"})
            self.seconds.append(time.perf_counter() - started)

    def stop(self) -> list[float]:
        self._done.set()
        self._thread.join(timeout=10)
        return self.seconds


def _rss() -> int:
    return int(psutil.Process().memory_info().rss)


@pytest.mark.parametrize("ext", [".docx", ".pptx", ".xlsx", ".epub"])
def test_zip_bombs_are_refused_before_they_are_unpacked(client: TestClient, tmp_path: Path, ext: str) -> None:
    inner = {".docx": "word/document.xml", ".pptx": "ppt/slides/slide1.xml", ".xlsx": "xl/worksheets/sheet1.xml",
             ".epub": "OEBPS/chapter1.xhtml"}[ext]  # fmt: skip
    bomb = _zip(tmp_path / f"bomb{ext}", {"[Content_Types].xml": b"<Types/>", inner: 300 * MB})
    assert len(bomb) < 1 * MB
    upload(client, ("fine.txt", "别的用户的文件。".encode()))
    searches = _Searching(client)
    before, started = _rss(), time.perf_counter()
    response = upload(client, (f"bomb{ext}", bomb))
    assert time.perf_counter() - started < 10 and _rss() - before < 200 * MB
    assert_clean(response, 413, f"bomb{ext}", "unpack")
    assert max(searches.stop()) < 1.0  # other users' searches went on meanwhile


def test_a_small_docx_unpacking_to_50_mb_is_refused_at_once(client: TestClient, tmp_path: Path) -> None:
    bomb = _zip(tmp_path / "small.docx", {"word/document.xml": 50 * MB})
    started = time.perf_counter()
    assert_clean(upload(client, ("small.docx", bomb)), 413, "zip bomb", "limits.max_zip_ratio")
    assert time.perf_counter() - started < 5


def test_too_many_zip_members(client: TestClient, tmp_path: Path) -> None:
    many = _zip(tmp_path / "many.docx", {f"word/media/{i}.xml": b"<x/>" for i in range(600)})
    assert_clean(upload(client, ("many.docx", many)), 413, "600 parts", "limits.max_zip_members")


def test_the_rest_of_an_upload_goes_on_beside_a_bomb(client: TestClient, tmp_path: Path) -> None:
    bomb = _zip(tmp_path / "bomb.docx", {"word/document.xml": 50 * MB})
    body = assert_clean(upload(client, ("bomb.docx", bomb), ("ok.txt", "正常文件。".encode())), 200)
    assert list(body["data"]["failed_files"]) == ["bomb.docx"]
    assert client.get("/knowledge_base/list_files", params={"knowledge_base_name": KB}).json()["data"] == ["ok.txt"]


def test_a_csv_of_one_huge_line_is_refused(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, limits={"max_chars_per_file": 1_000_000})
    with TestClient(create_app(settings)) as client:
        client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB})
        started = time.perf_counter()
        response = upload(client, ("commas.csv", b"a" + b"," * 5 * MB + b"\n"))
        assert time.perf_counter() - started < 20
        assert_clean(response, 413, "commas.csv", "limits.max_chars_per_file")


def test_a_man_page_of_escapes_and_requests_is_bounded(tmp_path: Path) -> None:
    """Roff escapes and layout requests vanish in the text, so the bound is on what is left, and fast."""
    settings = make_settings(tmp_path, limits={"max_chars_per_file": 100_000})
    page = b".TH BIG 1\n" + b".SH NAME\n" + b"\\fBword\\fR \\(em " * 300_000 + b"\n.PP\n" * 50_000
    with TestClient(create_app(settings)) as client:
        client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB})
        started = time.perf_counter()
        response = upload(client, ("big.1", page))
        assert time.perf_counter() - started < 20
        assert_clean(response, 413, "big.1", "limits.max_chars_per_file")


def test_too_many_rows_in_a_sheet_or_csv(client: TestClient, tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("数据")
    for row in range(1500):
        sheet.append([f"行{row}", row])
    book.save(tmp_path / "rows.xlsx")
    assert_clean(upload(client, ("rows.xlsx", (tmp_path / "rows.xlsx").read_bytes())), 413, "limits.max_rows_per_sheet")
    csv = "\n".join(f"名{i},{i}" for i in range(1500)).encode()
    assert_clean(upload(client, ("rows.csv", csv)), 413, "1,000 rows")


def test_too_many_chunks_in_a_file(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, limits={"max_chunks_per_file": 20})
    with TestClient(create_app(settings)) as client:
        client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB})
        text = "".join(f"第{i}句话讲的是不同的内容。" for i in range(400)).encode()
        response = upload(client, ("long.txt", text), chunk_size="40", chunk_overlap="5")
        assert_clean(response, 413, "long.txt", "limits.max_chunks_per_file")


def test_long_texts_to_embed_and_long_queries(client: TestClient) -> None:
    started = time.perf_counter()
    assert_clean(client.post("/other/embed_texts", json={"texts": ["字" * MB]}), 413, "limits.max_embed_chars")
    many = {"texts": ["字" * 9000] * 30}
    assert_clean(client.post("/other/embed_texts", json=many), 413, "limits.max_embed_total_chars")
    as_query = {"texts": ["字" * 2000], "to_query": True}
    assert_clean(client.post("/other/embed_texts", json=as_query), 413, "limits.max_query_chars")
    assert_clean(client.post("/v1/embeddings", json={"model": "hash", "input": "字" * MB}), 413, "max_embed_chars")
    search = {"knowledge_base_name": KB, "query": "问" * 10_000}
    assert_clean(client.post("/knowledge_base/search_docs", json=search), 413, "limits.max_query_chars")
    chat = {"knowledge_base_name": KB, "query": "问" * 10_000}
    assert_clean(client.post("/chat/knowledge_base_chat", json=chat), 413, "limits.max_query_chars")
    assert time.perf_counter() - started < 5


def test_symbolic_links_in_a_content_folder_are_not_followed(client: TestClient, tmp_path: Path) -> None:
    upload(client, ("real.txt", "真正的文件内容。".encode()))
    content = tmp_path / "data" / KB / "content"
    (content / "passwd.txt").symlink_to("/etc/passwd")
    (content / "registry.txt").symlink_to(tmp_path / "data" / "info.db")
    (content / "linked").symlink_to(tmp_path, target_is_directory=True)
    folder_only = client.get("/knowledge_base/list_folder_only_files", params={"knowledge_base_name": KB})
    assert folder_only.json()["data"] == []
    for name in ("passwd.txt", "registry.txt", "linked/data/info.db"):
        params = {"knowledge_base_name": KB, "file_name": name}
        assert_clean(client.get("/knowledge_base/download_doc", params=params), 404)
    update = client.post("/knowledge_base/update_docs", json={"knowledge_base_name": KB, "file_names": ["passwd.txt"]})
    assert_clean(update, 404, "passwd.txt")
    rebuilt = client.post("/knowledge_base/recreate_vector_store", json={"knowledge_base_name": KB})
    assert "passwd" not in rebuilt.text
    assert client.get("/knowledge_base/list_files", params={"knowledge_base_name": KB}).json()["data"] == ["real.txt"]
    search = {"knowledge_base_name": KB, "query": "root", "search_mode": "keyword"}
    assert client.post("/knowledge_base/search_docs", json=search).json() == []
    replaced = upload(client, ("passwd.txt", b"not through the link"), override="true")
    assert_clean(replaced, 422, "link")
    assert "root" in Path("/etc/passwd").read_text()


def test_deeply_nested_metadata_is_refused_and_searches_keep_working(client: TestClient) -> None:
    deep: dict[str, Any] = {}
    for _ in range(400):
        deep = {"d": deep}
    docs = json.dumps({"deep.txt": [{"page_content": "嵌套很深的元数据。", "metadata": deep}]})
    assert_clean(upload(client, ("deep.txt", b"x"), docs=docs), 422, "nests deeper")
    upload(client, ("fine.txt", "普通文件。".encode()))
    chunk = client.post(
        "/knowledge_base/search_docs", json={"knowledge_base_name": KB, "query": "", "file_name": "fine.txt"}
    ).json()[0]
    edit = {chunk["id"]: {"page_content": "改过的文字。", "metadata": deep}}
    edited = client.post("/knowledge_base/update_docs_by_id", json={"knowledge_base_name": KB, "docs": edit})
    assert_clean(edited, 422, "nests deeper")
    for query in ("普通", "文件", "改过"):
        assert (
            client.post("/knowledge_base/search_docs", json={"knowledge_base_name": KB, "query": query}).status_code
            == 200
        )
    nested = "{" * 5000 + "}" * 5000
    assert_clean(upload(client, ("n.txt", b"x"), docs=nested), 422, "docs")


def test_hidden_names_are_refused_at_upload(client: TestClient) -> None:
    for name in (".env.md", "notes/.draft.txt"):
        assert_clean(upload(client, (name, "隐藏的文件。".encode())), 422, "starts with '.'")
        assert_clean(upload(client, (name, b"x"), to_vector_store="false"), 422, "starts with '.'")
    assert client.get("/knowledge_base/list_files", params={"knowledge_base_name": KB}).json()["data"] == []


def test_names_that_cannot_be_files_are_4xx(client: TestClient) -> None:
    assert_clean(upload(client, ("长" * 104 + ".txt", b"x")), 422, "bytes long")
    assert upload(client, ("a.txt", "甲。".encode())).status_code == 200
    assert_clean(upload(client, ("a.txt/b.txt", "乙。".encode())), 422, "a.txt is a file")
    assert upload(client, ("d.txt/x.txt", "丁。".encode())).status_code == 200
    assert_clean(upload(client, ("d.txt", "戊。".encode())), 422, "a folder or link of that name")
    assert_clean(upload(client, ("d.txt", b"x"), to_vector_store="false"), 422, "a folder or link of that name")
    for name in ("info.db", "info.db-wal", "info.db-shm"):
        created = client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": name})
        assert_clean(created, 422, "taken by a file of the data folder")


def test_huge_numbers_are_4xx(client: TestClient) -> None:
    big = 2**63
    search = {"knowledge_base_name": KB, "query": "x", "top_k": big}
    assert_clean(client.post("/knowledge_base/search_docs", json=search), 422, "top_k")
    params = {"knowledge_base_name": KB, "offset": big}
    assert_clean(client.get("/knowledge_base/list_file_details", params=params), 422, "offset")
    assert_clean(upload(client, ("c.txt", b"x"), chunk_size=str(big)), 422, "chunk_size")


def test_corrupt_office_files_name_no_server_path(client: TestClient) -> None:
    for name in ("broken.docx", "broken.pptx", "broken.xlsx", "broken.epub"):
        assert_clean(upload(client, (name, b"PK\x03\x04 not really a zip")), 422, name)


def test_html_nested_past_the_parser_depth_is_refused_not_cut_short(client: TestClient) -> None:
    deep = b"<html><body>" + b"<div>" * 100_000 + "深".encode() + b"</div>" * 100_000 + b"<p>after</p></body></html>"
    started = time.perf_counter()
    assert_clean(upload(client, ("deep.html", deep)), 422, "deep.html", "nested too deeply")
    assert time.perf_counter() - started < 20
    shallow = b"<html><body>" + b"<div>" * 200 + "浅".encode() + b"</div>" * 200 + b"</body></html>"
    assert upload(client, ("shallow.html", shallow)).status_code == 200


def test_bodies_are_cut_off_while_they_stream_and_refused_without_the_key(tmp_path: Path) -> None:
    """At the ASGI level, counting what the app reads of a body that has no Content-Length."""
    import asyncio

    settings = make_settings(tmp_path, api={"api_key": "k", "max_upload_mb": 1})
    app = create_app(settings)

    async def call(headers: list[tuple[bytes, bytes]]) -> tuple[int, int]:
        sent: list[dict[str, Any]] = []
        chunks = [0]

        async def receive() -> dict[str, Any]:
            chunks[0] += 1
            head = b'--xyz\r\nContent-Disposition: form-data; name="files"; filename="a.txt"\r\n\r\n'
            body = (head if chunks[0] == 1 else b"") + b"x" * 256 * 1024
            return {"type": "http.request", "body": body, "more_body": chunks[0] < 400}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/knowledge_base/upload_docs", "headers": headers,
                 "query_string": b"", "http_version": "1.1", "scheme": "http", "server": ("t", 80)}  # fmt: skip
        await app(scope, receive, send)
        return sent[0]["status"], chunks[0]

    content_type = (b"content-type", b"multipart/form-data; boundary=xyz")
    status, read = asyncio.run(call([content_type]))
    assert (status, read) == (401, 0)  # refused before a byte of the body was read
    status, read = asyncio.run(call([content_type, (b"authorization", b"Bearer k")]))
    assert status == 413 and read <= 6  # 1 MB is four chunks of 256 KB: cut off right after
