"""File → documents → chunks → vectors. Pure preparation: nothing here writes to a store or the registry."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from server.db.repository import FileRecord
from server.documents import Document
from server.embeddings import EmbeddingPool
from server.embeddings.base import Vectors
from server.errors import DocumentLoadError, FileTooLarge, InvalidInput, ZhikuError
from server.knowledge_base.params import ChunkParams
from server.knowledge_base.paths import validate_upload_name
from server.loaders import LoadLimits, load_file
from server.loaders.faq import FAQ_LOADER
from server.ocr import OcrService, PageOcr
from server.splitter import SPLITTER_NAME, split_documents

Failures = dict[str, ZhikuError]
CustomDocs = Mapping[str, Sequence[Any]]
"""{file name: [{"page_content", "metadata"}, ...]}: chunks given by the user instead of parsing the file."""


@dataclass(frozen=True)
class SourceFile:
    """A file to ingest: where its bytes are (a staged upload, a content file) and its name in the KB."""

    path: Path
    file_name: str


@dataclass
class PreparedFile:
    """One file's chunks, ready to be embedded and written."""

    record: FileRecord
    chunks: list[Document]
    source_path: Path | None = None
    vectors: Vectors | None = field(default=None, repr=False)

    @property
    def texts(self) -> list[str]:
        return [chunk.page_content for chunk in self.chunks]

    @property
    def metadatas(self) -> list[dict[str, Any]]:
        return [chunk.metadata for chunk in self.chunks]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _record(
    path: Path | None, file_name: str, params: ChunkParams, loader: str, custom: bool, ocr: bool = False
) -> FileRecord:
    stat = path.stat() if path is not None and path.exists() else None
    return FileRecord(
        file_name=file_name,
        ext=Path(file_name).suffix.lower(),
        size=stat.st_size if stat else 0,
        mtime=stat.st_mtime if stat else 0.0,
        sha256=file_sha256(path) if stat and path is not None else "",
        loader=loader,
        splitter="" if custom else SPLITTER_NAME,
        chunk_size=params.chunk_size,
        chunk_overlap=params.chunk_overlap,
        zh_title_enhance=params.zh_title_enhance,
        custom_docs=custom,
        ocr=ocr,
    )


@dataclass(frozen=True)
class IngestLimits:
    load: LoadLimits | None = None  # bounds while a file is parsed; None: none
    max_chunks: int | None = None  # chunks of one file
    max_chunk_chars: int | None = None  # one chunk written by hand (custom docs)


def prepare_file(
    path: Path, file_name: str, params: ChunkParams, limits: IngestLimits = IngestLimits(), ocr: PageOcr | None = None
) -> PreparedFile:
    """Load and split one file (with `ocr`, scans and images are read by OCR); raises a ZhikuError naming the file."""
    loaded = load_file(path, source=file_name, limits=limits.load, ocr=ocr)
    if loaded.loader == FAQ_LOADER:  # one chunk per phrasing: a question is matched whole, never cut or titled
        chunks = [Document(doc.page_content, {**doc.metadata, "chunk_index": i}) for i, doc in enumerate(loaded.docs)]
    else:
        chunks = split_documents(
            loaded.docs,
            chunk_size=params.chunk_size,
            chunk_overlap=params.chunk_overlap,
            zh_title_enhance=params.zh_title_enhance,
        )
    if not chunks:
        raise DocumentLoadError(f"{file_name}: no text could be extracted, so there is nothing to search")
    _check_count(file_name, len(chunks), limits)
    return PreparedFile(_record(path, file_name, params, loaded.loader, False, loaded.ocr), chunks, path)


def prepare_custom(
    path: Path | None, file_name: str, docs: Sequence[Any], params: ChunkParams, limits: IngestLimits = IngestLimits()
) -> PreparedFile:
    """Chunks supplied by the user instead of parsing the file (the `docs` upload field)."""
    chunks = []
    for index, item in enumerate(docs):
        if not isinstance(item, dict) or not isinstance(item.get("page_content"), str):
            raise InvalidInput(f"docs[{file_name!r}][{index}] must be an object with a string 'page_content'")
        metadata = item.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise InvalidInput(f"docs[{file_name!r}][{index}].metadata must be an object")
        text = item["page_content"]
        if limits.max_chunk_chars is not None and len(text) > limits.max_chunk_chars:
            raise FileTooLarge(
                f"docs[{file_name!r}][{index}] has {len(text):,} characters, more than {limits.max_chunk_chars:,} "
                "(limits.max_embed_chars); split it into several chunks"
            )
        if text.strip():
            chunks.append(Document(text, {**metadata, "source": file_name, "chunk_index": index}))
    if not chunks:
        raise InvalidInput(f"docs[{file_name!r}] holds no non-empty page_content")
    _check_count(file_name, len(chunks), limits)
    return PreparedFile(_record(path, file_name, params, "CustomDocs", True), chunks, path)


def _check_count(file_name: str, count: int, limits: IngestLimits) -> None:
    if limits.max_chunks is not None and count > limits.max_chunks:
        raise FileTooLarge(
            f"{file_name}: {count:,} chunks, more than {limits.max_chunks:,} (limits.max_chunks_per_file); "
            "split the file, or upload it with a larger chunk_size"
        )


def parse_custom_docs(raw: str | Mapping[str, Any] | None) -> dict[str, list[Any]]:
    """The `docs` request field: {"file name": [{"page_content", "metadata"}, ...]}, as JSON text or an object."""
    if raw in (None, "", {}):
        return {}
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as error:
        raise InvalidInput(f"docs is not valid JSON ({error.msg} at position {error.pos})") from error
    except RecursionError as error:
        raise InvalidInput("docs is nested too deeply; send a flat list of chunks per file") from error
    if not isinstance(value, dict) or not all(isinstance(v, list) for v in value.values()):
        raise InvalidInput('docs must look like {"file.txt": [{"page_content": "...", "metadata": {}}]}')
    return {validate_upload_name(name): chunks for name, chunks in value.items()}


class FilePreparer:
    """Parses files in parallel (`parse_workers` threads; OCR in `ocr`'s processes) and embeds their chunks in one
    batched pass."""

    def __init__(
        self,
        embeddings: EmbeddingPool,
        *,
        parse_workers: int = 4,
        limits: IngestLimits = IngestLimits(),
        ocr: OcrService | None = None,
    ) -> None:
        self._embeddings = embeddings
        self._workers = max(1, parse_workers)
        self.limits = limits
        self._ocr = ocr

    def prepare_one(
        self, path: Path, file_name: str, params: ChunkParams, custom: Sequence[Any] | None = None
    ) -> PreparedFile:
        """One file, parsed or (with `custom`) built from hand-written chunks, within the limits."""
        if custom is not None:
            return prepare_custom(path, file_name, custom, params, self.limits)
        ocr = self._ocr.for_file(params.ocr) if self._ocr is not None else None
        return prepare_file(path, file_name, params, self.limits, ocr)

    def prepare(
        self, files: Sequence[SourceFile], params: ChunkParams, custom_docs: CustomDocs | None = None
    ) -> tuple[list[PreparedFile], Failures]:
        """Each file parsed (or built from its `custom_docs` entry); returns the prepared ones and the failures."""
        custom_docs = custom_docs or {}
        prepared: list[PreparedFile] = []
        failed: Failures = {}
        for item in files:
            if item.file_name in custom_docs:
                try:
                    prepared.append(self.prepare_one(item.path, item.file_name, params, custom_docs[item.file_name]))
                except ZhikuError as error:
                    failed[item.file_name] = error
        parsed, parse_failed = self._parse([f for f in files if f.file_name not in custom_docs], params)
        return prepared + parsed, {**failed, **parse_failed}

    def embed(self, model: str, files: Sequence[PreparedFile]) -> None:
        """Embed every chunk of every file in one batched pass, then hand each file its rows."""
        texts = [text for prepared in files for text in prepared.texts]
        if texts:
            vectors = self._embeddings.embed_documents(model, texts)
        else:
            vectors = np.zeros((0, self._embeddings.dim(model)), np.float32)
        start = 0
        for prepared in files:
            end = start + len(prepared.chunks)
            prepared.vectors = vectors[start:end]
            start = end

    def _parse(self, files: Sequence[SourceFile], params: ChunkParams) -> tuple[list[PreparedFile], Failures]:
        def attempt(item: SourceFile) -> PreparedFile | ZhikuError:
            try:
                return self.prepare_one(item.path, item.file_name, params)
            except ZhikuError as error:
                return error

        prepared: list[PreparedFile] = []
        failed: Failures = {}
        with ThreadPoolExecutor(max_workers=self._workers) as pool:
            for item, outcome in zip(files, pool.map(attempt, files), strict=True):
                if isinstance(outcome, ZhikuError):
                    failed[item.file_name] = outcome
                else:
                    prepared.append(outcome)
        return prepared, failed
