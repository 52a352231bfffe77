"""Searches never wait behind a long ingestion; writes to one KB are serialised without losing anything."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

from configs import EmbedModelConfig, Settings
from server.bootstrap import build_services
from server.embeddings import EmbeddingPool, create_embedder
from server.embeddings.base import Embedder, Vectors
from server.knowledge_base.ingest import SourceFile
from server.knowledge_base.params import ChunkParams
from server.knowledge_base.search import SearchQuery


class SlowDocuments:
    """The hash embedder, but embedding documents takes a while (like a real model on a big upload)."""

    def __init__(self, inner: Embedder, delay: float) -> None:
        self.name, self._inner, self._delay = inner.name, inner, delay
        self.started = threading.Event()

    @property
    def dim(self) -> int:
        return self._inner.dim

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        self.started.set()
        time.sleep(self._delay)
        return self._inner.embed_documents(texts)

    def embed_query(self, text: str) -> Vectors:
        return self._inner.embed_query(text)

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return self._inner.embed_queries(texts)


def _stage(tmp_path: Path, name: str, text: str) -> SourceFile:
    path = tmp_path / "uploads" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return SourceFile(path, name)


def test_search_does_not_wait_for_a_slow_upload(settings: Settings, tmp_path: Path) -> None:
    slow: list[SlowDocuments] = []

    def factory(name: str, config: EmbedModelConfig) -> Embedder:
        slow.append(SlowDocuments(create_embedder(name, config), delay=3.0))
        return slow[-1]

    services = build_services(settings, embeddings=EmbeddingPool(settings.embed_models, factory=factory))
    try:
        services.knowledge_bases.create("并发")
        upload = threading.Thread(
            target=services.files.ingest,
            args=("并发", [_stage(tmp_path, "big.txt", "很长的文件。" * 500)], ChunkParams(250, 50)),
        )
        upload.start()
        assert slow[0].started.wait(10)
        started = time.perf_counter()
        query = SearchQuery("文件", top_k=3, score_threshold=0.0)
        assert services.search.search("并发", query) == []
        assert time.perf_counter() - started < 1.0
        upload.join()
        assert services.search.search("并发", query)
    finally:
        services.close()


def test_parallel_uploads_to_one_kb_keep_every_file(settings: Settings, tmp_path: Path) -> None:
    services = build_services(settings)
    try:
        files = services.files
        services.knowledge_bases.create("并发")
        params = ChunkParams(100, 10)
        threads = [
            threading.Thread(
                target=files.ingest,
                args=("并发", [_stage(tmp_path / str(i), f"f{i}.txt", f"第{i}个文件的内容。" * 30)], params),
            )
            for i in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert files.list_files("并发") == sorted(f"f{i}.txt" for i in range(8))
        total, rows = files.file_details("并发", limit=100)
        chunks = sum(row.chunk_count for row in rows)
        assert total == 8 and services.storage.store(services.catalog.require("并发")).count() == chunks
    finally:
        services.close()
