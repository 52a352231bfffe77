"""Searching one or several knowledge bases in dense, keyword or hybrid mode, with optional reranking.

The searcher knows nothing of knowledge bases beyond what a `SearchTarget` hands it: a name to tag hits with,
the mode, the vector store, the keyword index, the query embedder and the embedding model's name.

Scores are always in [0, 1], higher is better. With a `Calibration` (the default, `kb.calibrated_scores`) every
mode's score is a calibrated relevance on one scale (server/retrieval/calibration.py):
- `dense`: the cosine through the model's curve (a model without one keeps its cosine);
- `keyword`: BM25 through the keyword curve;
- `hybrid` with `weighted` fusion (the default): the mean of both sides' relevance, the keyword side weighted by
  its best hit's coverage of the query, so a keyword list that caught a word or two barely moves the dense one;
- several targets: their lists merged by score.
With `rrf` fusion (and without a calibration) hybrid mode and several targets use reciprocal-rank fusion (k=60)
divided by the best possible value, so those scores depend on ranks only. With a reranker: the cross-encoder's
score. `score_threshold` applies to the final score.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from server.embeddings.base import Vectors
from server.retrieval.calibration import Calibration
from server.retrieval.fusion import rrf
from server.retrieval.keyword_index import KeywordIndex, bm25_to_score, coverage
from server.retrieval.modes import Fusion, SearchMode
from server.retrieval.reranker import CrossEncoderReranker
from server.vectorstores.base import Hit, VectorStore
from server.vectorstores.checks import metadata_matches

# The keyword side's weight in hybrid mode is its best hit's coverage of the query to this power.
COVERAGE_POWER = 1.0


@dataclass(frozen=True)
class SearchRequest:
    query: str
    top_k: int
    score_threshold: float = 0.0
    fetch_k: int | None = None  # candidates per list for fusion / reranking; None: max(top_k * 4, 20)
    where: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class SearchTarget:
    """One knowledge base to search. `keywords` is needed in keyword and hybrid mode."""

    name: str
    mode: SearchMode
    store: VectorStore
    embed_query: Callable[[str], Vectors]
    keywords: KeywordIndex | None = None
    where: Mapping[str, Any] | None = None  # its own filter (its allow-list of files), beside the request's
    model: str = ""  # the embedding model's name: which calibration curve its cosines take


@dataclass(frozen=True)
class KbHit:
    kb: str
    hit: Hit


def default_fetch_k(top_k: int) -> int:
    return max(top_k * 4, 20)


def dense_hits(target: SearchTarget, query: str, limit: int, where: Mapping[str, Any] | None) -> list[Hit]:
    return target.store.search(target.embed_query(query), limit, 0.0, where or None)


def keyword_hits(target: SearchTarget, query: str, limit: int, where: Mapping[str, Any] | None) -> list[Hit]:
    if target.keywords is None:
        raise ValueError(f"{target.name}: a keyword search needs the target's keyword index")
    # The keyword index knows no metadata, so a filter is checked on the chunks BM25 ranks. Asking for five times
    # `limit` fills it usually; when it does not and more matches exist, every match is checked, so a narrow
    # filter still finds its chunks (never "top_k, then filter").
    fetch = limit * 5 if where else limit
    hits, matched = _filtered_keyword_hits(target.keywords, target.store, query, fetch, where)
    if where and len(hits) < limit and matched == fetch:
        everything = max(target.keywords.count(), fetch + 1)
        hits, _ = _filtered_keyword_hits(target.keywords, target.store, query, everything, where)
    return hits[:limit]


def _filtered_keyword_hits(
    keywords: KeywordIndex, store: VectorStore, query: str, fetch: int, where: Mapping[str, Any] | None
) -> tuple[list[Hit], int]:
    """The BM25 hits among the best `fetch` that match `where`, and how many BM25 found before filtering."""
    found = keywords.search(query, fetch)
    scores = {item.id: bm25_to_score(item.bm25) for item in found}
    chunks = store.get([item.id for item in found])
    hits = [
        Hit(chunk.id, chunk.text, chunk.metadata, scores[chunk.id])
        for chunk in chunks
        if metadata_matches(chunk.metadata, where)
    ]
    return hits, len(found)


class Searcher:
    """Runs searches over targets; owns the threads that run hybrid searches' keyword sides."""

    def __init__(
        self,
        *,
        keyword_workers: int = 4,
        reranker: CrossEncoderReranker | None = None,
        fusion: Fusion = "weighted",
        calibration: Calibration | None = None,
    ) -> None:
        self._pool = ThreadPoolExecutor(max_workers=keyword_workers, thread_name_prefix="keyword-search")
        self._reranker = reranker
        self._fusion: Fusion = fusion if calibration is not None else "rrf"  # weighting needs one scale
        self._calibration = calibration

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def search(self, targets: Sequence[SearchTarget], request: SearchRequest) -> list[KbHit]:
        """The best `top_k` chunks of `targets` for the query, best first (the module docstring says how scored)."""
        fetch_k = request.fetch_k or default_fetch_k(request.top_k)
        single = len(targets) == 1 and targets[0].mode != "hybrid"
        limit = request.top_k if single and self._reranker is None else max(fetch_k, request.top_k)
        lists = self._ranked_lists(targets, request, limit)
        candidates = _fuse(lists) if self._fusion == "rrf" else _merged(lists)
        if self._reranker is not None:
            candidates = _rerank(self._reranker, request.query, candidates[:fetch_k])
        kept = [item for item in candidates if item.hit.score >= request.score_threshold]
        return kept[: request.top_k]

    def _ranked_lists(self, targets: Sequence[SearchTarget], request: SearchRequest, limit: int) -> list[list[KbHit]]:
        """One dense and/or one keyword list per target. In hybrid mode the keyword searches run on the pool while
        this thread embeds the query and searches the vectors: SQLite and FAISS both release the GIL, so a hybrid
        search costs about the slower of the two sides rather than their sum."""
        query = request.query
        pending: dict[int, Future[list[Hit]]] = {
            index: self._pool.submit(keyword_hits, target, query, limit, _where(request, target))
            for index, target in enumerate(targets)
            if target.mode == "hybrid"
        }
        lists: list[list[KbHit]] = []
        for index, target in enumerate(targets):
            where = _where(request, target)
            if target.mode in ("dense", "hybrid"):
                lists.append(self._dense(target, dense_hits(target, query, limit, where)))
            if target.mode == "keyword":
                lists.append(self._keyword(target, query, keyword_hits(target, query, limit, where)))
            if index in pending:
                lists.append(self._keyword(target, query, pending.pop(index).result()))
                if self._fusion == "weighted":
                    lists[-2:] = [_weighted_pair(query, lists[-2], lists[-1])]
        return lists

    def _dense(self, target: SearchTarget, hits: list[Hit]) -> list[KbHit]:
        calibration = self._calibration
        if calibration is None:
            return [KbHit(target.name, hit) for hit in hits]
        return [_rescored(KbHit(target.name, hit), calibration.dense_score(target.model, hit.score)) for hit in hits]

    def _keyword(self, target: SearchTarget, query: str, hits: list[Hit]) -> list[KbHit]:
        calibration = self._calibration
        if calibration is None:
            return [KbHit(target.name, hit) for hit in hits]
        return [_rescored(KbHit(target.name, hit), calibration.keyword_score(hit.score)) for hit in hits]


def _where(request: SearchRequest, target: SearchTarget) -> dict[str, Any] | None:
    merged = {**(request.where or {}), **(target.where or {})}
    return merged or None


def _fuse(lists: list[list[KbHit]]) -> list[KbHit]:
    if len(lists) == 1:
        return lists[0]
    by_key = {(item.kb, item.hit.id): item for ranked in lists for item in ranked}
    fused = rrf([[(item.kb, item.hit.id) for item in ranked] for ranked in lists])
    return [_rescored(by_key[key], score) for key, score in fused]


def _weighted_pair(query: str, dense: list[KbHit], keyword: list[KbHit]) -> list[KbHit]:
    """One target's calibrated dense and keyword lists as one: each chunk's weighted mean relevance, the keyword
    side weighing its best hit's coverage of the query. A chunk the dense side did not return takes its lowest
    score; one the keyword side did not return takes 0 (it may share no word with the query)."""
    if not keyword or not dense:
        return dense or keyword
    weight = coverage(query, keyword[0].hit.text) ** COVERAGE_POWER  # only the best hit's: one text to tokenize
    dense_scores = {item.hit.id: item.hit.score for item in dense}
    keyword_scores = {item.hit.id: item.hit.score for item in keyword}
    dense_floor = dense[-1].hit.score  # every chunk has some cosine: the list's last bounds one it left out
    fused = []
    for item in {item.hit.id: item for item in [*keyword, *dense]}.values():
        d = dense_scores.get(item.hit.id, dense_floor)
        k = keyword_scores.get(item.hit.id, 0.0)
        fused.append(_rescored(item, (d + weight * k) / (1.0 + weight)))
    return sorted(fused, key=lambda item: item.hit.score, reverse=True)


def _merged(lists: list[list[KbHit]]) -> list[KbHit]:
    """Lists whose scores share one scale, merged by score."""
    if len(lists) == 1:
        return lists[0]
    return sorted((item for ranked in lists for item in ranked), key=lambda item: item.hit.score, reverse=True)


def _rescored(item: KbHit, score: float) -> KbHit:
    hit = item.hit
    return KbHit(item.kb, Hit(hit.id, hit.text, hit.metadata, score))


def _rerank(reranker: CrossEncoderReranker, query: str, candidates: list[KbHit]) -> list[KbHit]:
    scores = reranker.scores(query, [item.hit.text for item in candidates])
    rescored = [_rescored(item, score) for item, score in zip(candidates, scores, strict=True)]
    return sorted(rescored, key=lambda item: item.hit.score, reverse=True)
