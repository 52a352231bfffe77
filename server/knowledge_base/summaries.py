"""Per-KB summary indexes: one LLM-written summary per file, embedded with the KB's model, for whole-document
questions ("这份文档讲了什么") that no single chunk answers.

An index is one JSON file, <data_dir>/<kb>/summary/summaries.json, small (one entry per file), written whole
(temp file + rename) under a lock, and removed with the KB's folder. A summary of a file that is no longer in the
KB is never returned. An index made with another embedding model than the KB's (after a rebuild that changed it)
counts as empty: recreate_summary_vector_store makes it again.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from server.db.models import KnowledgeBase
from server.embeddings import EmbeddingPool
from server.errors import StorageError
from server.knowledge_base.search import SearchResult
from server.knowledge_base.storage import KbStorage

SUMMARY_FILE = Path("summary") / "summaries.json"


@dataclass(frozen=True)
class FileSummary:
    file_name: str
    summary: str
    vector: list[float]
    chunk_count: int
    llm: str  # the model that wrote it


class SummaryIndexes:
    def __init__(self, storage: KbStorage, embeddings: EmbeddingPool) -> None:
        self._storage = storage
        self._embeddings = embeddings
        self._lock = threading.Lock()

    def load(self, kb: KnowledgeBase) -> dict[str, FileSummary]:
        path = self._path(kb)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("embed_model") != kb.embed_model:
                return {}
            return {name: FileSummary(**entry) for name, entry in data["files"].items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
            raise StorageError(
                f"the summary index of {kb.name!r} cannot be read ({type(error).__name__}); recreate it with "
                "/knowledge_base/kb_summary_api/recreate_summary_vector_store"
            ) from None

    def put(self, kb: KnowledgeBase, file_name: str, summary: str, *, chunk_count: int, llm: str) -> FileSummary:
        """Embed and store one file's summary (replacing an earlier one)."""
        vector = self._embeddings.embed_documents(kb.embed_model, [summary])[0]
        entry = FileSummary(file_name, summary, [float(x) for x in vector], chunk_count, llm)
        with self._lock:
            files = self.load(kb)
            files[file_name] = entry
            self._write(kb, files)
        return entry

    def clear(self, kb: KnowledgeBase) -> None:
        with self._lock:
            self._write(kb, {})

    def search(self, kb: KnowledgeBase, query: str, top_k: int, files: set[str]) -> list[SearchResult]:
        """The summaries of `files` closest to the query; score: cosine similarity clamped to [0, 1]."""
        entries = [entry for name, entry in self.load(kb).items() if name in files]
        if not entries or top_k <= 0:
            return []
        query_vector = np.asarray(self._embeddings.embed_query(kb.embed_model, query), dtype=np.float32).ravel()
        matrix = np.asarray([entry.vector for entry in entries], dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1) * (np.linalg.norm(query_vector) or 1.0)
        scores = matrix @ query_vector / np.where(norms == 0, 1.0, norms)
        order = np.argsort(-scores)[:top_k]
        return [_result(entries[i], float(np.clip(scores[i], 0.0, 1.0))) for i in order]

    def _path(self, kb: KnowledgeBase) -> Path:
        return self._storage.kb_dir(kb.name) / SUMMARY_FILE

    def _write(self, kb: KnowledgeBase, files: dict[str, FileSummary]) -> None:
        path = self._path(kb)
        payload: dict[str, Any] = {"embed_model": kb.embed_model, "files": {n: asdict(e) for n, e in files.items()}}
        temp = path.with_suffix(".tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temp.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
            os.replace(temp, path)
        except OSError as error:
            raise StorageError(f"could not write the summary index of {kb.name!r}: {error.strerror}") from None


def _result(entry: FileSummary, score: float) -> SearchResult:
    metadata = {"source": entry.file_name, "summary": True, "chunk_count": entry.chunk_count, "llm": entry.llm}
    return SearchResult(f"summary:{entry.file_name}", entry.summary, metadata, score)
