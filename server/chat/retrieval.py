"""The one place chat searches a knowledge base, so a new search option changes a single call."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from server.knowledge_base.service import KnowledgeBaseService, SearchResult


def kb_retriever(
    kbs: KnowledgeBaseService,
    kb_name: str | Sequence[str],
    query: str,
    *,
    top_k: int,
    score_threshold: float,
    search_mode: str | None = None,
) -> Callable[[], list[SearchResult]]:
    """A call that returns the chunks of `kb_name` (one KB or several, fused) closest to `query`.

    Run it in a worker thread; `search_mode` None means the KB's own mode, else the global default.
    """
    return partial(kbs.search, kb_name, query, top_k=top_k, score_threshold=score_threshold, search_mode=search_mode)
