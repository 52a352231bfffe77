"""Turning settings into running parts. Only entry points (API, CLI) call this."""

from __future__ import annotations

import logging

from configs import Settings
from server.db.engine import make_engine, make_session_factory
from server.db.schema import upgrade_database
from server.embeddings import EmbeddingPool
from server.knowledge_base.context import ChunkDefaults, KbContext
from server.vectorstores.cache import StoreCache


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def build_context(settings: Settings, *, embeddings: EmbeddingPool | None = None) -> KbContext:
    """Open the registry (creating or upgrading its tables) and set up embeddings and the store cache."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.sqlalchemy_url)
    upgrade_database(engine)
    kb = settings.kb
    return KbContext(
        data_dir=settings.data_dir,
        sessions=make_session_factory(engine),
        embeddings=embeddings or EmbeddingPool(settings.embed_models),
        stores=StoreCache(capacity=kb.loaded_stores, options=settings.store_options()),
        default_vs_type=kb.default_vs_type,
        default_embed_model=kb.default_embed_model,
        defaults=ChunkDefaults(kb.chunk_size, kb.chunk_overlap, kb.zh_title_enhance, kb.top_k, kb.score_threshold),
        parse_workers=kb.parse_workers,
        store_options=settings.store_options(),
    )


def close_context(ctx: KbContext) -> None:
    ctx.stores.close_all()
    engine = ctx.sessions.kw.get("bind")
    if engine is not None:
        engine.dispose()
