"""Everything the knowledge-base services share, built once per process from the settings."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from server.db.models import KnowledgeBase
from server.embeddings import EmbeddingPool
from server.knowledge_base.paths import vector_dir
from server.retrieval.reranker import CrossEncoderReranker
from server.vectorstores.base import VectorStore
from server.vectorstores.cache import StoreCache
from server.vectorstores.factory import StoreSpec


@dataclass(frozen=True)
class ChunkDefaults:
    chunk_size: int = 250
    chunk_overlap: int = 50
    zh_title_enhance: bool = False
    top_k: int = 3
    score_threshold: float = 0.0
    search_mode: str = "hybrid"

    def search_limits(self, top_k: int | None, score_threshold: float | None) -> tuple[int, float]:
        """A request's top_k and score_threshold, with these defaults for the ones it left out."""
        return top_k or self.top_k, self.score_threshold if score_threshold is None else score_threshold


class KbLocks:
    """One lock per knowledge base: writes to a KB are serialised, searches never take it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def __call__(self, kb_name: str) -> threading.Lock:
        # Not reentrant on purpose: service functions never nest it, and a plain lock may be released by the
        # thread that did not take it (a streamed rebuild can move between threads).
        with self._guard:
            return self._locks.setdefault(kb_name, threading.Lock())


@dataclass
class KbContext:
    data_dir: Path
    sessions: sessionmaker[Session]
    embeddings: EmbeddingPool
    stores: StoreCache
    default_vs_type: str
    default_embed_model: str
    defaults: ChunkDefaults = field(default_factory=ChunkDefaults)
    parse_workers: int = 4
    store_options: Mapping[str, Any] = field(default_factory=dict)
    locks: KbLocks = field(default_factory=KbLocks)
    reranker: CrossEncoderReranker | None = None
    # Runs the keyword side of a hybrid search while the caller embeds the query and searches the vectors.
    search_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=4, thread_name_prefix="keyword-search")
    )

    def store_spec(
        self,
        kb: KnowledgeBase,
        *,
        vs_type: str | None = None,
        embed_model: str | None = None,
        directory: Path | None = None,
        collection: str | None = None,
    ) -> StoreSpec:
        """Where `kb`'s vectors live; the keyword arguments describe another location (a rebuild target)."""
        model = embed_model or kb.embed_model
        return StoreSpec(
            vs_type=vs_type or kb.vs_type,
            kb_id=kb.id,
            kb_name=kb.name,
            embed_model=model,
            dim=self.embeddings.dim(model),
            directory=directory or vector_dir(self.data_dir, kb.name, model),
            collection=collection or kb.vs_collection,
        )

    def store_for(self, kb: KnowledgeBase) -> VectorStore:
        return self.stores.get(self.store_spec(kb))
