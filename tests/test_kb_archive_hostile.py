"""Damaged and hostile KB archives are refused with a clear 422 and write nothing: no KB, no file, no leftover."""

from __future__ import annotations

import io
import json
import stat
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_settings
from fastapi.testclient import TestClient

from server.api.app import create_app
from server.errors import ArchiveRefused
from server.knowledge_base.archive import ArchiveLimits, read_archive

KB = "样例"
Mutation = Callable[[dict[str, bytes]], dict[str, bytes] | bytes]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(tmp_path))) as test_client:
        yield test_client


@pytest.fixture
def archive(client: TestClient) -> dict[str, bytes]:
    """A valid archive of a two-file KB, as {member: bytes}; the KB is deleted again."""
    client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB})
    uploads = [("files", ("a.md", "# 甲\n\n第一段内容。".encode(), "text/plain")),
               ("files", ("docs/b.txt", b"second file, plain text.", "text/plain"))]  # fmt: skip
    assert (
        client.post("/knowledge_base/upload_docs", data={"knowledge_base_name": KB}, files=uploads).status_code == 200
    )
    exported = client.get("/knowledge_base/export", params={"knowledge_base_name": KB}).content
    assert client.post("/knowledge_base/delete_knowledge_base", json=KB).status_code == 200
    with zipfile.ZipFile(io.BytesIO(exported)) as opened:
        return {name: opened.read(name) for name in opened.namelist()}


def pack(members: dict[str, bytes], extra: Callable[[zipfile.ZipFile], None] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as out:
        for name, data in members.items():
            out.writestr(name, data)
        if extra is not None:
            extra(out)
    return buffer.getvalue()


def with_manifest(members: dict[str, bytes], **changes: Any) -> dict[str, bytes]:
    manifest = json.loads(members["manifest.json"])
    manifest.update(changes)
    return {**members, "manifest.json": json.dumps(manifest).encode()}


def symlink(out: zipfile.ZipFile) -> None:
    info = zipfile.ZipInfo("content/link.md")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    out.writestr(info, "/etc/passwd")


def bomb(out: zipfile.ZipFile) -> None:
    out.writestr("content/zeros.txt", b"\0" * (64 << 20))  # 64 MiB of zeros deflate to ~64 KiB


CASES: dict[str, tuple[Callable[[dict[str, bytes]], bytes], str]] = {
    "path traversal": (lambda m: pack({**m, "content/../../evil.txt": b"x"}), "cannot be a file name"),
    "absolute path": (lambda m: pack({**m, "/tmp/evil.txt": b"x"}), "unexpected archive member"),
    "backslashes": (lambda m: pack({**m, "content/..\\..\\evil.txt": b"x"}), "cannot be a file name"),
    "hidden file": (lambda m: pack({**m, "content/.bashrc": b"x"}), "cannot be a file name"),
    "unexpected member": (lambda m: pack({**m, "run.sh": b"rm -rf /"}), "unexpected archive member"),
    "symbolic link": (lambda m: pack(m, symlink), "symbolic link"),
    "zip bomb": (lambda m: pack(m, bomb), "zip bomb"),
    "newer format": (lambda m: pack(with_manifest(m, format_version=99)), "newer Zhiku"),
    "not a zip": (lambda m: b"PK\x03\x04 this is not really a zip file" * 10, "damaged or truncated"),
    "truncated": (lambda m: pack(m)[: len(pack(m)) // 2], "damaged or truncated"),
    "no manifest": (lambda m: pack({k: v for k, v in m.items() if k != "manifest.json"}), "manifest.json missing"),
    "manifest not json": (lambda m: pack({**m, "manifest.json": b"{nope"}), "not valid JSON"),
    "wrong kind of manifest": (lambda m: pack(with_manifest(m, format="other")), "manifest.json: format"),
    "chunk count": (
        lambda m: pack(with_manifest(m, chunks=json.loads(m["manifest.json"])["chunks"] + 1)),
        "the manifest counts",
    ),
    "vectors of another shape": (lambda m: pack({**m, "vectors.npy": npy((2, 3))}), "vectors.npy holds"),
    "file without its original": (
        lambda m: pack({k: v for k, v in m.items() if k != "content/a.md"}),
        "disagree",
    ),
    "a bad KB name": (
        lambda m: pack(with_manifest(m, kb={**json.loads(m["manifest.json"])["kb"], "name": "../x"})),
        "name",
    ),
}


def npy(shape: tuple[int, int]) -> bytes:
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.zeros(shape, np.float32), allow_pickle=False)
    return buffer.getvalue()


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_archive_is_refused_and_writes_nothing(
    client: TestClient, archive: dict[str, bytes], tmp_path: Path, case: str
) -> None:
    make, message = CASES[case]
    before = snapshot(tmp_path / "data")
    files = {"file": ("kb.zhiku.zip", make(archive), "application/zip")}
    response = client.post("/knowledge_base/import", files=files)
    assert response.status_code == 422, response.text
    body = response.json()
    assert message in body["msg"], body["msg"]
    assert str(tmp_path) not in response.text and "Traceback" not in response.text
    assert client.get("/knowledge_base/list_knowledge_bases").json()["data"] == []
    assert snapshot(tmp_path / "data") == before
    assert not list(tmp_path.rglob("evil.txt")) and not list(tmp_path.rglob("zeros.txt"))


def test_the_untouched_archive_imports(client: TestClient, archive: dict[str, bytes]) -> None:
    """The cases above differ from a good archive only by what they break."""
    files = {"file": ("kb.zhiku.zip", pack(archive), "application/zip")}
    assert client.post("/knowledge_base/import", files=files).status_code == 201
    listed = client.get("/knowledge_base/list_files", params={"knowledge_base_name": KB}).json()["data"]
    assert sorted(listed) == ["a.md", "docs/b.txt"]


def snapshot(root: Path) -> set[str]:
    """Every path under the data dir but the registry's own files (SQLite journals come and go)."""
    found = {p.relative_to(root).as_posix() for p in root.rglob("*") if not p.name.startswith("info.db")}
    assert found, "the data dir should hold the job queue and folders at least"
    return found


def test_chunks_too_big_for_memory_are_refused(archive: dict[str, bytes], tmp_path: Path) -> None:
    """The JSONL members and the vectors are read into memory: their declared sizes are bounded first."""
    path = tmp_path / "big.zhiku.zip"
    path.write_bytes(pack(archive))
    with pytest.raises(ArchiveRefused, match="more than the limit of 100"):
        read_archive(path, tmp_path / "staging", ArchiveLimits(max_loaded_bytes=100))
    assert not (tmp_path / "staging").exists()
