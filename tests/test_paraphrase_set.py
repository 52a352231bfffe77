"""The paraphrased-question dev sets (bench/data/paraphrase-{zh,en}): well-formed, and not copied.

They are BEIR query/qrels folders whose corpus lives outside the repository, in
../shared/eval/xquad-{zh,en}; these checks are offline and skip when that is absent.
"""

from __future__ import annotations

import csv
import json
import re
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MIN_QUERIES = 90
MAX_COPY_SHARE = 0.10
# lang -> (query folder, corpus folder, id prefix, run length that counts as copying)
SETS = {
    "zh": ("paraphrase-zh", "xquad-zh", "pz-", 4),
    "en": ("paraphrase-en", "xquad-en", "pe-", 3),
}


def _corpus(name: str) -> dict[str, str]:
    path = SHARED / "eval" / name / "corpus.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} is missing: the paraphrase sets reference ../shared/eval beside the repository")
    out: dict[str, str] = {}
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                doc = json.loads(line)
                out[str(doc["_id"])] = str(doc["text"])
    return out


def _queries(folder: str) -> list[tuple[str, str]]:
    path = REPO / "bench" / "data" / folder / "queries.jsonl"
    with path.open(encoding="utf-8") as f:
        return [(str(d["_id"]), str(d["text"])) for d in (json.loads(line) for line in f if line.strip())]


def _qrels(folder: str) -> list[tuple[str, str, str]]:
    path = REPO / "bench" / "data" / folder / "qrels" / "test.tsv"
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    assert rows[0] == ["query-id", "corpus-id", "score"], rows[0]
    return [(r[0], r[1], r[2]) for r in rows[1:] if r]


def _units(text: str, lang: str) -> list[str]:
    """Characters (zh, whitespace dropped) or lower-cased words (en) to compare runs of."""
    if lang == "zh":
        return [c for c in text.lower() if not c.isspace()]
    return re.findall(r"[a-z0-9]+(?:['’][a-z]+)?", text.lower())


def _runs(units: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(units[i : i + n]) for i in range(len(units) - n + 1)}


def copied_runs(query: str, paragraph: str, lang: str, n: int) -> list[str]:
    """The runs of n units the query shares with the paragraph (a zh run holds a CJK character, no punctuation)."""
    shared = _runs(_units(query, lang), n) & _runs(_units(paragraph, lang), n)
    if lang == "zh":
        shared = {r for r in shared if any("\u4e00" <= c <= "\u9fff" for c in r) and all(c.isalnum() for c in r)}
    sep = "" if lang == "zh" else " "
    return sorted(sep.join(r) for r in shared)


@pytest.mark.parametrize("lang", sorted(SETS))
def test_set_is_well_formed(lang: str) -> None:
    folder, corpus_name, prefix, _ = SETS[lang]
    corpus = _corpus(corpus_name)
    queries = _queries(folder)
    qrels = _qrels(folder)
    ids = [qid for qid, _ in queries]
    assert len(queries) >= MIN_QUERIES, f"{lang}: only {len(queries)} queries"
    assert len(set(ids)) == len(ids), f"{lang}: duplicate query ids"
    assert all(re.fullmatch(re.escape(prefix) + r"\d{3}", qid) for qid in ids), f"{lang}: ids must be {prefix}NNN"
    assert all(text.strip() for _, text in queries), f"{lang}: empty query text"
    missing_docs = sorted({cid for _, cid, _ in qrels} - corpus.keys())
    assert not missing_docs, f"{lang}: qrels point at ids not in {corpus_name}: {missing_docs}"
    assert all(score == "1" for _, _, score in qrels)
    judged = {qid for qid, _, _ in qrels}
    assert not sorted(set(ids) - judged), f"{lang}: queries without a qrel: {sorted(set(ids) - judged)}"
    assert not sorted(judged - set(ids)), f"{lang}: qrels for unknown queries: {sorted(judged - set(ids))}"


def test_sets_are_spread_over_the_corpus() -> None:
    for lang, (folder, _, _, _) in SETS.items():
        docs = {cid for _, cid, _ in _qrels(folder)}
        articles = {cid.split("_")[0] for cid in docs}
        assert len(docs) >= 80, f"{lang}: only {len(docs)} paragraphs covered"
        assert len(articles) >= 40, f"{lang}: only {len(articles)} articles covered"


@pytest.mark.parametrize("lang", sorted(SETS))
def test_questions_are_not_copied(lang: str) -> None:
    folder, corpus_name, _, n = SETS[lang]
    corpus = _corpus(corpus_name)
    text = dict(_queries(folder))
    violations: list[str] = []
    for qid, cid, _ in _qrels(folder):
        runs = copied_runs(text[qid], corpus[cid], lang, n)
        if runs:
            violations.append(f"{qid} ({cid}): {runs}")
    report = "\n".join(violations)
    if violations:  # reported, not failed: mostly proper names that cannot be paraphrased
        warnings.warn(f"{lang}: {len(violations)}/{len(text)} queries share a {n}-unit run:\n{report}", stacklevel=1)
    assert len(violations) <= MAX_COPY_SHARE * len(text), f"{lang}: too many copied questions:\n{report}"
