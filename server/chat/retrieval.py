"""The one place chat searches a knowledge base, so a new search option changes a single call."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from server.knowledge_base.service import KnowledgeBaseService, SearchResult


def kb_retriever(
    kbs: KnowledgeBaseService, kb_name: str, query: str, *, top_k: int, score_threshold: float
) -> Callable[[], list[SearchResult]]:
    """A call that returns the chunks of `kb_name` closest to `query` (run it in a worker thread)."""
    return partial(kbs.search, kb_name, query, top_k=top_k, score_threshold=score_threshold)
