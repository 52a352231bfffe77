"""File → documents → chunks → vectors. Pure preparation: nothing here writes to a store or the registry."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from server.db.repository import FileRecord
from server.documents import Document
from server.embeddings import EmbeddingPool
from server.embeddings.base import Vectors
from server.errors import DocumentLoadError, InvalidInput, ZhikuError
from server.loaders import load_file
from server.splitter import SPLITTER_NAME, ChineseRecursiveTextSplitter, split_documents


@dataclass(frozen=True)
class ChunkParams:
    chunk_size: int
    chunk_overlap: int
    zh_title_enhance: bool = False

    def __post_init__(self) -> None:
        ChineseRecursiveTextSplitter(self.chunk_size, self.chunk_overlap)  # raises InvalidInput with the values


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


def _record(path: Path | None, file_name: str, params: ChunkParams, loader: str, custom: bool) -> FileRecord:
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
    )


def prepare_file(path: Path, file_name: str, params: ChunkParams) -> PreparedFile:
    """Load and split one file; raises a ZhikuError that names the file."""
    loaded = load_file(path, source=file_name)
    chunks = split_documents(
        loaded.docs,
        chunk_size=params.chunk_size,
        chunk_overlap=params.chunk_overlap,
        zh_title_enhance=params.zh_title_enhance,
    )
    if not chunks:
        raise DocumentLoadError(f"{file_name}: no text could be extracted, so there is nothing to search")
    return PreparedFile(_record(path, file_name, params, loaded.loader, False), chunks, path)


def prepare_custom(path: Path | None, file_name: str, docs: Sequence[Any], params: ChunkParams) -> PreparedFile:
    """Chunks supplied by the user instead of parsing the file (the `docs` upload field)."""
    chunks = []
    for index, item in enumerate(docs):
        if not isinstance(item, dict) or not isinstance(item.get("page_content"), str):
            raise InvalidInput(f"docs[{file_name!r}][{index}] must be an object with a string 'page_content'")
        metadata = item.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise InvalidInput(f"docs[{file_name!r}][{index}].metadata must be an object")
        if item["page_content"].strip():
            chunks.append(Document(item["page_content"], {**metadata, "source": file_name, "chunk_index": index}))
    if not chunks:
        raise InvalidInput(f"docs[{file_name!r}] holds no non-empty page_content")
    return PreparedFile(_record(path, file_name, params, "CustomDocs", True), chunks, path)


def prepare_many(
    items: Sequence[tuple[Path, str]], params: ChunkParams, workers: int
) -> tuple[list[PreparedFile], dict[str, ZhikuError]]:
    """Parse files in parallel; returns the prepared ones and {file_name: error} for the rest."""

    def attempt(item: tuple[Path, str]) -> PreparedFile | ZhikuError:
        try:
            return prepare_file(item[0], item[1], params)
        except ZhikuError as error:
            return error

    prepared: list[PreparedFile] = []
    failed: dict[str, ZhikuError] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for (_, file_name), outcome in zip(items, pool.map(attempt, items), strict=True):
            if isinstance(outcome, ZhikuError):
                failed[file_name] = outcome
            else:
                prepared.append(outcome)
    return prepared, failed


def embed_prepared(pool: EmbeddingPool, model: str, files: Sequence[PreparedFile]) -> None:
    """Embed every chunk of every file in one batched pass, then hand each file its rows."""
    texts = [text for prepared in files for text in prepared.texts]
    vectors = pool.embed_documents(model, texts) if texts else np.zeros((0, pool.dim(model)), np.float32)
    start = 0
    for prepared in files:
        end = start + len(prepared.chunks)
        prepared.vectors = vectors[start:end]
        start = end
