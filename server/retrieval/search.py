"""Searching one or several knowledge bases in dense, keyword or hybrid mode, with optional reranking.

Scores are always in [0, 1], higher is better:
- one KB, `dense`: the clamped cosine similarity of the vector store;
- one KB, `keyword`: BM25 mapped by `bm25_to_score` (b / (b + 5));
- `hybrid`, or several KBs in any mode: reciprocal-rank fusion (k=60) of every list, divided by the best possible
  fused value, so these scores depend on ranks only;
- with a reranker: the cross-encoder's score.
`score_threshold` applies to the final score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from server.db.models import KnowledgeBase
from server.errors import UnknownSearchMode
from server.knowledge_base.context import KbContext
from server.retrieval.fusion import rrf
from server.retrieval.keyword_index import bm25_to_score
from server.retrieval.reranker import CrossEncoderReranker
from server.retrieval.sync import ensure_keyword_index
from server.vectorstores.base import Hit

SEARCH_MODES = ("dense", "keyword", "hybrid")


@dataclass(frozen=True)
class SearchRequest:
    query: str
    top_k: int
    score_threshold: float = 0.0
    mode: str | None = None  # None: each KB's own search_mode, else the global default
    fetch_k: int | None = None  # candidates per list for fusion / reranking; None: max(top_k * 4, 20)
    where: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class KbHit:
    kb: str
    hit: Hit


def check_mode(mode: str) -> str:
    if mode not in SEARCH_MODES:
        raise UnknownSearchMode(f"unknown search_mode {mode!r}; use one of {', '.join(SEARCH_MODES)}")
    return mode


def default_fetch_k(top_k: int) -> int:
    return max(top_k * 4, 20)


def resolve_mode(ctx: KbContext, kb: KnowledgeBase, requested: str | None) -> str:
    return check_mode(requested or kb.search_mode or ctx.defaults.search_mode)


def dense_hits(ctx: KbContext, kb: KnowledgeBase, query: str, limit: int, where: Mapping[str, Any] | None) -> list[Hit]:
    vector = ctx.embeddings.embed_query(kb.embed_model, query)
    return ctx.store_for(kb).search(vector, limit, 0.0, where or None)


def keyword_hits(
    ctx: KbContext, kb: KnowledgeBase, query: str, limit: int, where: Mapping[str, Any] | None
) -> list[Hit]:
    # A metadata filter is applied after BM25, so ask for more to still fill `limit`.
    found = ensure_keyword_index(ctx, kb).search(query, limit * 5 if where else limit)
    scores = {item.id: bm25_to_score(item.bm25) for item in found}
    chunks = ctx.store_for(kb).get([item.id for item in found])
    wanted = dict(where or {})
    hits = [
        Hit(chunk.id, chunk.text, chunk.metadata, scores[chunk.id])
        for chunk in chunks
        if all(chunk.metadata.get(key) == value for key, value in wanted.items())
    ]
    return hits[:limit]


def _ranked_lists(
    ctx: KbContext, kbs: Sequence[KnowledgeBase], request: SearchRequest, limit: int
) -> list[list[KbHit]]:
    """One dense and/or one keyword list per KB. In hybrid mode the keyword searches run on `ctx.search_pool`
    while this thread embeds the query and searches the vectors: SQLite and FAISS both release the GIL, so a
    hybrid search costs about the slower of the two sides rather than their sum."""
    modes = [resolve_mode(ctx, kb, request.mode) for kb in kbs]
    pending: dict[str, Future[list[Hit]]] = {}
    for kb, mode in zip(kbs, modes, strict=True):
        if mode == "hybrid":
            pending[kb.name] = ctx.search_pool.submit(keyword_hits, ctx, kb, request.query, limit, request.where)
    lists: list[list[KbHit]] = []
    for kb, mode in zip(kbs, modes, strict=True):
        if mode in ("dense", "hybrid"):
            lists.append([KbHit(kb.name, hit) for hit in dense_hits(ctx, kb, request.query, limit, request.where)])
        if mode == "keyword":
            lists.append([KbHit(kb.name, hit) for hit in keyword_hits(ctx, kb, request.query, limit, request.where)])
        if kb.name in pending:
            lists.append([KbHit(kb.name, hit) for hit in pending.pop(kb.name).result()])
    return lists


def _fuse(lists: list[list[KbHit]]) -> list[KbHit]:
    if len(lists) == 1:
        return lists[0]
    by_key = {(item.kb, item.hit.id): item for ranked in lists for item in ranked}
    fused = rrf([[(item.kb, item.hit.id) for item in ranked] for ranked in lists])
    return [_rescored(by_key[key], score) for key, score in fused]


def _rescored(item: KbHit, score: float) -> KbHit:
    hit = item.hit
    return KbHit(item.kb, Hit(hit.id, hit.text, hit.metadata, score))


def _rerank(reranker: CrossEncoderReranker, query: str, candidates: list[KbHit]) -> list[KbHit]:
    scores = reranker.scores(query, [item.hit.text for item in candidates])
    rescored = [_rescored(item, score) for item, score in zip(candidates, scores, strict=True)]
    return sorted(rescored, key=lambda item: item.hit.score, reverse=True)


def search_kbs(
    ctx: KbContext,
    kbs: Sequence[KnowledgeBase],
    request: SearchRequest,
    reranker: CrossEncoderReranker | None = None,
) -> list[KbHit]:
    """The best `top_k` chunks of `kbs` for the query, best first (see the module docstring for scores)."""
    fetch_k = request.fetch_k or default_fetch_k(request.top_k)
    single = len(kbs) == 1 and resolve_mode(ctx, kbs[0], request.mode) != "hybrid"
    limit = request.top_k if single and reranker is None else max(fetch_k, request.top_k)
    candidates = _fuse(_ranked_lists(ctx, kbs, request, limit))
    if reranker is not None:
        candidates = _rerank(reranker, request.query, candidates[:fetch_k])
    kept = [item for item in candidates if item.hit.score >= request.score_threshold]
    return kept[: request.top_k]
