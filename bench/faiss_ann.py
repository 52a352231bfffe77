"""FAISS at scale: the approximate (IVF) index against exact search, on embeddings of real text.

    python -m bench.faiss_ann [--real 20000] [--sizes 100000,1000000] [--model all-MiniLM-L6-v2]

Embedding a million chunks would take days on two cores, so the corpus is grown from real embeddings: the first
`--real` chunks of SciFact (../shared/eval/scifact, split as ingestion splits them) are embedded with the real
model, and each further vector is a random blend of two real ones plus a little noise, renormalised. That keeps
the structure retrieval depends on (topics, near-duplicates, a low intrinsic dimension), which uniform random
vectors lack: on those, every index, HNSW included, finds few true neighbours. Queries are real SciFact claims
embedded by the query path. Recall@10 is measured against exact search over the same vectors.

Prints, per size: build (training) time, recall@10, search p50/p95 (store.search, no query embedding, one thread)
for IVF and exact, memory per chunk (the process's resident memory growth when the store is opened from its file,
so the vectors, the IVF lists and the docstore) and file size per chunk.
Embeddings are cached in ~/.cache/zhiku-bench so a rerun skips the model.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

from bench.common import percentiles
from configs import load_settings
from server.embeddings import create_embedder
from server.splitter.recursive import ChineseRecursiveTextSplitter
from server.vectorstores.base import Vectors
from server.vectorstores.faiss_index import AnnPolicy
from server.vectorstores.faiss_store import FaissStore

SCIFACT = Path(__file__).resolve().parents[1].parent / "shared" / "eval" / "scifact"
CACHE = Path.home() / ".cache" / "zhiku-bench"
K = 10


def real_embeddings(model: str, count: int, queries: int) -> tuple[Vectors, Vectors]:
    cache = CACHE / f"scifact-{model}-{count}-{queries}.npz"
    if cache.exists():
        with np.load(cache) as saved:
            return saved["docs"], saved["queries"]
    settings = load_settings()
    embedder = create_embedder(model, settings.embed_models[model])
    chunks = _chunks(count)
    started = time.perf_counter()
    docs = embedder.embed_documents(chunks)
    print(f"embedded {len(chunks)} real chunks with {model} in {time.perf_counter() - started:.0f} s")
    claims = [json.loads(line)["text"] for line in (SCIFACT / "queries.jsonl").open(encoding="utf-8")][:queries]
    query_vectors = np.vstack([embedder.embed_query(text) for text in claims])
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(cache, docs=docs, queries=query_vectors)
    return docs, query_vectors


def _chunks(count: int) -> list[str]:
    chunks: list[str] = []
    splitter = ChineseRecursiveTextSplitter(chunk_size=250, chunk_overlap=50)
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as corpus:
        for line in corpus:
            row = json.loads(line)
            chunks += splitter.split_text(f"{row.get('title', '')}\n{row['text']}")
            if len(chunks) >= count:
                return chunks[:count]
    return chunks


def grown(real: Vectors, size: int, noise: float, seed: int = 0) -> Vectors:
    """`real` followed by blends of two random real rows (weights 0.5–1 and the rest) plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    extra = size - len(real)
    parts = [real]
    for start in range(0, extra, 100_000):
        n = min(100_000, extra - start)
        a, b = rng.integers(0, len(real), n), rng.integers(0, len(real), n)
        w = rng.uniform(0.5, 1.0, (n, 1)).astype(np.float32)
        rows = w * real[a] + (1 - w) * real[b] + rng.normal(0, noise, (n, real.shape[1])).astype(np.float32)
        parts.append(rows / np.linalg.norm(rows, axis=1, keepdims=True))
    return np.ascontiguousarray(np.vstack(parts), dtype=np.float32)


def exact_top(data: Vectors, queries: Vectors) -> list[set[int]]:
    scores = queries @ data.T
    return [set(np.argpartition(-row, K)[:K].tolist()) for row in scores]


def settled_rss() -> int:
    """Resident memory once garbage is collected and freed heap pages are handed back to the system."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    return int(psutil.Process().memory_info().rss)


def fill(directory: Path, data: Vectors, policy: AnnPolicy) -> tuple[FaissStore, float]:
    """The store holding `data` (chunk ids = row numbers) and the flush time."""
    store = FaissStore(directory, data.shape[1], policy=policy)
    store.create()
    for start in range(0, len(data), 50_000):
        rows = data[start : start + 50_000]
        ids = [str(i) for i in range(start, start + len(rows))]
        store.add([f"chunk {i}" for i in ids], rows, [{"source": f"f{int(i) // 100}.txt"} for i in ids], ids)
    started = time.perf_counter()
    store.flush()
    return store, time.perf_counter() - started


def measure(store: FaissStore, queries: Vectors, truth: list[set[int]], rounds: int) -> tuple[float, float, float]:
    """Recall@10 against `truth`, then p50 and p95 in ms over `rounds` passes of the queries."""
    found = [{int(hit.id) for hit in store.search(q, K)} for q in queries]
    recall = float(np.mean([len(f & t) / K for f, t in zip(found, truth, strict=True)]))
    samples = []
    for _ in range(rounds):
        for q in queries:
            started = time.perf_counter()
            store.search(q, K)
            samples.append((time.perf_counter() - started) * 1000)
    p50, p95 = percentiles(samples)
    return recall, p50, p95


def run_size(work: Path, data: Vectors, queries: Vectors, args: argparse.Namespace) -> None:
    n = len(data)
    truth = exact_top(data, queries)
    store, flush_s = fill(work / f"ivf-{n}", data, AnnPolicy())
    size = store.path.stat().st_size
    del store
    for fraction in (float(f) for f in args.probe_fractions.split(",")):
        policy = AnnPolicy(probe_fraction=fraction)
        before = settled_rss()
        started = time.perf_counter()
        store = FaissStore(work / f"ivf-{n}", data.shape[1], policy=policy)
        reopen_s = time.perf_counter() - started
        rss = settled_rss() - before
        print(
            f"{n:>9,} chunks  {'IVF' if store.approximate else 'exact'}  flush+train {flush_s:5.1f} s  "
            f"memory {rss / n:5.0f} B/chunk (loaded store)  file {size / n:5.0f} B/chunk"
        )
        recall, p50, p95 = measure(store, queries, truth, rounds=3)
        nprobe = policy.nprobe(store.nlist) if store.approximate else 0
        print(
            f"{n:>9,} chunks  probe {fraction:.4f} ({nprobe} lists)  recall@10 {recall:.3f}  "
            f"p50 {p50:6.2f} ms  p95 {p95:6.2f} ms  reopen {reopen_s:4.1f} s"
        )
        del store
        gc.collect()
    if args.exact_queries:
        run_exact(work, data, queries[: args.exact_queries], truth[: args.exact_queries])


def run_exact(work: Path, data: Vectors, queries: Vectors, truth: list[set[int]]) -> None:
    n = len(data)
    exact, _ = fill(work / f"exact-{n}", data, AnnPolicy(threshold=0))
    recall, p50, p95 = measure(exact, queries, truth, rounds=1)
    print(f"{n:>9,} chunks  exact  recall@10 {recall:.3f}  p50 {p50:6.2f} ms  p95 {p95:6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--real", type=int, default=20_000, help="real chunks to embed")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--noise", type=float, default=0.02, help="per-dimension noise added to blends")
    parser.add_argument("--exact-queries", type=int, default=50, help="queries timed on exact search (0: skip)")
    parser.add_argument("--probe-fractions", default="0.0625", help="IVF probe fractions to measure, comma-separated")
    args = parser.parse_args()
    real, queries = real_embeddings(args.model, args.real, args.queries)
    print(f"{len(real)} real chunks, {len(queries)} real queries, dim {real.shape[1]}, noise {args.noise}")
    with tempfile.TemporaryDirectory(prefix="zhiku-ann-") as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            run_size(Path(tmp), grown(real, size, args.noise), queries, args)


if __name__ == "__main__":
    main()
