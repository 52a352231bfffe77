"""The KB archive: one zip file holding a knowledge base, to move it between machines and store types.

Members: `manifest.json` (format, KB settings, the embedding model with a fingerprint), `files.jsonl` (one line per
file: its registry record, tags, enabled), `chunks.jsonl` (one line per chunk, files in order: text and metadata,
hand edits included), `vectors.npy` (optional, one float32 row per chunk) and `content/<file name>` (the original
files). Reading checks every member before anything is extracted, and everything before the caller writes.
"""

from __future__ import annotations

import io
import json
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from server.embeddings.base import Vectors
from server.errors import ArchiveRefused, ArchiveTooNew, ZhikuError
from server.knowledge_base.paths import validate_upload_name

FORMAT = "zhiku-kb"
FORMAT_VERSION = 1
MANIFEST, FILES, CHUNKS, VECTORS, CONTENT = "manifest.json", "files.jsonl", "chunks.jsonl", "vectors.npy", "content/"
_FIXED = frozenset({MANIFEST, FILES, CHUNKS, VECTORS})
_LINK = stat.S_IFLNK
_Part = TypeVar("_Part", bound=BaseModel)


@dataclass(frozen=True)
class ArchiveLimits:
    max_expanded_bytes: int = 20 << 30  # all members together, once decompressed
    max_members: int = 200_000
    max_ratio: int = 200  # decompressed / compressed size of one member above 1 MiB: a zip bomb
    max_index_bytes: int = 64 << 20  # manifest.json, or one line of the JSONL members
    max_loaded_bytes: int = 4 << 30  # files.jsonl, chunks.jsonl and vectors.npy together: they are read into memory


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class KbPart(_Strict):
    name: str
    info: str = ""
    vs_type: str
    embed_model: str
    search_mode: str = ""
    ocr_mode: str = ""
    direct_answer_threshold: float | None = None  # FAQ direct answers; None = the importing server's setting


class EmbeddingPart(_Strict):
    model: str
    dim: int = Field(gt=0, le=65536)
    fingerprint: str
    probes: list[list[float]] = Field(max_length=64)


class ChunkingPart(_Strict):
    chunk_size: int
    chunk_overlap: int
    zh_title_enhance: bool


class Manifest(_Strict):
    format: Literal["zhiku-kb"]
    format_version: int
    created_at: str
    kb: KbPart
    embedding: EmbeddingPart
    files: int = Field(ge=0)
    chunks: int = Field(ge=0)
    vectors: bool
    tags: list[str] = []
    chunking: list[ChunkingPart] = []  # the chunking parameters its files were split with (files.jsonl: each one's)
    zhiku_version: str = ""


class FileEntry(_Strict):
    """A file's line in files.jsonl. It repeats FileRecord's fields on purpose: the archive format must stay
    readable when the registry's record changes (a new registry field gets a default here)."""

    file_name: str
    ext: str
    size: int = Field(ge=0)
    mtime: float
    sha256: str
    loader: str
    splitter: str
    chunk_size: int
    chunk_overlap: int
    zh_title_enhance: bool
    custom_docs: bool = False
    ocr: bool = False
    tags: list[str] = []
    enabled: bool = True
    chunks: int = Field(ge=0)
    original: bool


class ChunkEntry(_Strict):
    file: str
    text: str
    metadata: dict[str, Any]


@dataclass
class LoadedFile:
    entry: FileEntry
    chunks: list[ChunkEntry]
    original: Path | None  # extracted into the staging folder
    vectors: Vectors | None


@dataclass
class LoadedArchive:
    manifest: Manifest
    files: list[LoadedFile]


# -- writing ------------------------------------------------------------------------------------------------------


class ArchiveWriter:
    """Writes one archive; files are added one by one so a big KB never sits in memory as a whole."""

    def __init__(self, path: Path) -> None:
        self._zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6)
        self._files = io.StringIO()
        # zipfile writes one member at a time: the chunks wait in a temporary file, closed by finish() or abort()
        self._chunks = tempfile.SpooledTemporaryFile(max_size=64 << 20)  # noqa: SIM115
        self._vectors: list[Vectors] = []

    def add_file(
        self, entry: FileEntry, chunks: Sequence[ChunkEntry], original: Path | None, vectors: Vectors | None
    ) -> None:
        self._files.write(entry.model_dump_json() + "\n")
        for chunk in chunks:
            self._chunks.write((chunk.model_dump_json() + "\n").encode("utf-8"))
        if vectors is not None:
            self._vectors.append(np.asarray(vectors, dtype=np.float32))
        if original is not None:
            self._zip.write(original, CONTENT + entry.file_name)

    def finish(self, manifest: Manifest) -> None:
        self._chunks.seek(0)
        with self._zip.open(CHUNKS, "w", force_zip64=True) as handle:
            shutil.copyfileobj(self._chunks, handle, 1 << 20)
        self._chunks.close()
        self._zip.writestr(FILES, self._files.getvalue())
        if manifest.vectors:
            matrix = np.concatenate(self._vectors) if self._vectors else np.zeros((0, manifest.embedding.dim))
            with self._zip.open(VECTORS, "w", force_zip64=True) as handle:
                np.save(handle, matrix.astype(np.float32), allow_pickle=False)
        self._zip.writestr(MANIFEST, manifest.model_dump_json(indent=2))
        self._zip.close()

    def abort(self) -> None:
        self._chunks.close()
        self._zip.close()


# -- reading ------------------------------------------------------------------------------------------------------


def read_archive(path: Path, staging: Path, limits: ArchiveLimits) -> LoadedArchive:
    """Check and load an archive; originals are extracted under `staging`. Raises ArchiveRefused or ArchiveTooNew
    (nothing extracted is left behind then)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return _Reader(archive, staging, limits).load()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, NotImplementedError) as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise ArchiveRefused(f"the archive is damaged or truncated ({_reason(error)}); export the KB again") from error
    except ZhikuError:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _reason(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) < 200 else text[:200] + "…"


class _Reader:
    def __init__(self, archive: zipfile.ZipFile, staging: Path, limits: ArchiveLimits) -> None:
        self._zip = archive
        self._staging = staging
        self._limits = limits
        self._members = self._check_members()

    def load(self) -> LoadedArchive:
        manifest = self._manifest()
        entries = [_parsed(FileEntry, line, FILES) for line in self._lines(FILES, manifest.files)]
        chunks = [_parsed(ChunkEntry, line, CHUNKS) for line in self._lines(CHUNKS, manifest.chunks)]
        vectors = self._vectors(manifest) if manifest.vectors else None
        return LoadedArchive(manifest, self._files(entries, chunks, vectors))

    def _check_members(self) -> dict[str, zipfile.ZipInfo]:
        infos = self._zip.infolist()
        if len(infos) > self._limits.max_members:
            raise ArchiveRefused(f"the archive has {len(infos)} members, more than {self._limits.max_members}")
        members: dict[str, zipfile.ZipInfo] = {}
        total = 0
        for info in infos:
            name = info.filename
            if (info.external_attr >> 16) & 0o170000 == _LINK:
                raise ArchiveRefused(f"archive member {name!r} is a symbolic link; KB archives hold plain files only")
            if info.is_dir():
                continue
            if name not in _FIXED:
                _content_name(name)
            if name in members:
                raise ArchiveRefused(f"archive member {name!r} appears twice")
            total += info.file_size
            ratio = info.file_size / max(1, info.compress_size)
            if info.file_size > 1 << 20 and ratio > self._limits.max_ratio:
                raise ArchiveRefused(f"archive member {name!r} expands {ratio:.0f}-fold: refused as a zip bomb")
            members[name] = info
        if total > self._limits.max_expanded_bytes:
            raise ArchiveRefused(
                f"the archive expands to {total} bytes, more than the limit of {self._limits.max_expanded_bytes}"
            )
        loaded = sum(members[name].file_size for name in (FILES, CHUNKS, VECTORS) if name in members)
        if loaded > self._limits.max_loaded_bytes:
            raise ArchiveRefused(
                f"the archive's chunks and vectors take {loaded} bytes, more than the limit of "
                f"{self._limits.max_loaded_bytes}; split the KB, or import it on a machine with a higher limit"
            )
        missing = sorted({MANIFEST, FILES, CHUNKS} - set(members))
        if missing:
            raise ArchiveRefused(f"not a Zhiku KB archive: {', '.join(missing)} missing; export it with Zhiku")
        return members

    def _manifest(self) -> Manifest:
        info = self._members[MANIFEST]
        if info.file_size > self._limits.max_index_bytes:
            raise ArchiveRefused("manifest.json is too large to be a Zhiku manifest")
        try:
            raw = json.loads(self._zip.read(info))
        except json.JSONDecodeError as error:
            raise ArchiveRefused(f"manifest.json is not valid JSON ({error.msg})") from error
        version = raw.get("format_version") if isinstance(raw, dict) else None
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise ArchiveTooNew(
                f"the archive is format {version}, made by a newer Zhiku; this one reads format {FORMAT_VERSION} "
                "or older: upgrade Zhiku to import it"
            )
        return _validated(Manifest, raw, MANIFEST)

    def _lines(self, member: str, expected: int) -> Iterator[str]:
        count = 0
        with self._zip.open(self._members[member]) as handle:
            for raw in _bounded_lines(handle, self._limits.max_index_bytes, member):
                count += 1
                if count > expected:
                    raise ArchiveRefused(f"{member} has more lines than the manifest counts ({expected})")
                yield raw
        if count != expected:
            raise ArchiveRefused(f"{member} has {count} lines, the manifest counts {expected}: the archive is damaged")

    def _vectors(self, manifest: Manifest) -> Vectors:
        info = self._members.get(VECTORS)
        if info is None:
            raise ArchiveRefused("the manifest promises vectors but vectors.npy is missing")
        with self._zip.open(info) as handle:
            matrix = np.lib.format.read_array(handle, allow_pickle=False)
        if matrix.dtype != np.float32 or matrix.shape != (manifest.chunks, manifest.embedding.dim):
            raise ArchiveRefused(
                f"vectors.npy holds {matrix.dtype} {matrix.shape}, not float32 "
                f"({manifest.chunks}, {manifest.embedding.dim}): the archive is damaged"
            )
        return np.asarray(matrix, dtype=np.float32)

    def _files(self, entries: list[FileEntry], chunks: list[ChunkEntry], vectors: Vectors | None) -> list[LoadedFile]:
        names = [_content_name(CONTENT + entry.file_name) for entry in entries]
        if len(set(names)) != len(names):
            raise ArchiveRefused("files.jsonl names a file twice")
        originals = {name[len(CONTENT) :] for name in self._members if name.startswith(CONTENT)}
        listed = {entry.file_name for entry in entries if entry.original}
        if originals != listed:
            odd = sorted(originals ^ listed)[:3]
            raise ArchiveRefused(f"content/ and files.jsonl disagree (e.g. {odd}): the archive is damaged")
        loaded, start = [], 0
        for index, entry in enumerate(entries):
            own = chunks[start : start + entry.chunks]
            if len(own) != entry.chunks or any(chunk.file != entry.file_name for chunk in own):
                raise ArchiveRefused(f"the chunks of {entry.file_name} are not where files.jsonl says")
            rows = vectors[start : start + entry.chunks] if vectors is not None else None
            original = self._extract(entry.file_name, index) if entry.original else None
            loaded.append(LoadedFile(entry, own, original, rows))
            start += entry.chunks
        if start != len(chunks):
            raise ArchiveRefused("chunks.jsonl holds chunks of no file in files.jsonl")
        return loaded

    def _extract(self, file_name: str, index: int) -> Path:
        """Into a folder of its own per file, under a name checked above (never the member's path as given)."""
        info = self._members[CONTENT + file_name]
        target = self._staging / str(index) / Path(file_name).name
        target.parent.mkdir(parents=True, exist_ok=True)
        with self._zip.open(info) as source, target.open("wb") as sink:
            shutil.copyfileobj(source, sink, 1 << 20)  # zipfile stops at the declared size and checks the CRC
        return target


def _content_name(member: str) -> str:
    if not member.startswith(CONTENT):
        raise ArchiveRefused(f"unexpected archive member {member!r}; KB archives hold {MANIFEST}, content/… only")
    try:
        validate_upload_name(member[len(CONTENT) :])
    except ZhikuError as error:
        raise ArchiveRefused(f"archive member {member!r} cannot be a file name: {error.message}") from error
    return member


def _bounded_lines(handle: IO[bytes], limit: int, member: str) -> Iterator[str]:
    while True:
        raw = handle.readline(limit + 1)
        if not raw:
            return
        if len(raw) > limit:
            raise ArchiveRefused(f"a line of {member} is longer than {limit} bytes")
        text = raw.decode("utf-8").strip()
        if text:
            yield text


def _validated(model: type[Manifest], raw: Any, member: str) -> Manifest:
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        raise _refusal(error, member) from error


def _parsed(model: type[_Part], line: str, member: str) -> _Part:
    try:
        return model.model_validate_json(line)
    except ValidationError as error:
        raise _refusal(error, member) from error


def _refusal(error: ValidationError, member: str) -> ArchiveRefused:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "a line"
    return ArchiveRefused(f"{member}: {where}: {first['msg']}; is it a Zhiku KB archive?")
