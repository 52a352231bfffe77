"""Turning settings into running parts. Only entry points (API, CLI) call this."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from configs import Settings
from server.chat.context import ChatContext
from server.chat.conversations import ConversationStore
from server.chat.llm_client import LlmClient, make_http_client
from server.chat.models import LlmRegistry
from server.chat.prompts import load_prompt_templates
from server.chat.temp_knowledge import TEMP_KNOWLEDGE_TTL_S, TempKnowledgeStore
from server.db.engine import make_engine, make_session_factory
from server.db.schema import upgrade_database
from server.embeddings import EmbeddingPool
from server.knowledge_base.context import ChunkDefaults, KbContext
from server.retrieval.reranker import CrossEncoderReranker
from server.vectorstores.cache import StoreCache
from server.vectorstores.factory import SUPPORTED_VS_TYPES
from server.vectorstores.pg_engine import dispose_engine

PROMPT_TEMPLATES_FILE = Path(__file__).resolve().parents[1] / "configs" / "prompt_templates.yaml"


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def build_context(settings: Settings, *, embeddings: EmbeddingPool | None = None) -> KbContext:
    """Open the registry (creating or upgrading its tables) and set up embeddings and the store cache."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.sqlalchemy_url)
    upgrade_database(engine)
    kb = settings.kb
    store_options = settings.store_options()
    return KbContext(
        data_dir=settings.data_dir,
        sessions=make_session_factory(engine),
        embeddings=embeddings or EmbeddingPool(settings.embed_models),
        stores=StoreCache(capacity=kb.loaded_stores, options=store_options),
        default_vs_type=kb.default_vs_type,
        default_embed_model=kb.default_embed_model,
        defaults=ChunkDefaults(
            kb.chunk_size, kb.chunk_overlap, kb.zh_title_enhance, kb.top_k, kb.score_threshold, kb.search_mode
        ),
        parse_workers=kb.parse_workers,
        store_options=store_options,
        reranker=_reranker(settings),
    )


def _reranker(settings: Settings) -> CrossEncoderReranker | None:
    config = settings.reranker
    if not config.enabled or not config.path:
        return None
    return CrossEncoderReranker(Path(config.path), device=config.device)


def close_context(ctx: KbContext) -> None:
    ctx.search_pool.shutdown(wait=True)
    ctx.stores.close_all()
    pg_uri = ctx.store_options.get("pg", {}).get("uri")
    if pg_uri:
        dispose_engine(pg_uri)  # the pgvector stores share one pool per server
    engine = ctx.sessions.kw.get("bind")
    if engine is not None:
        engine.dispose()


def configured_vs_types(settings: Settings) -> list[str]:
    """The stores a new KB can use: pgvector only once its server is configured."""
    return [vs for vs in SUPPORTED_VS_TYPES if vs != "pg" or settings.vector_stores.pg.uri]


def worker_base_url(settings: Settings) -> str:
    """The OpenAI base URL of our LLM worker (a wildcard bind address is reached on localhost)."""
    host = settings.llm_worker.host
    host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.llm_worker.port}/v1"


def _ui_defaults(settings: Settings) -> dict[str, Any]:
    kb = settings.kb
    return {
        "top_k": kb.top_k,
        "score_threshold": kb.score_threshold,
        "search_mode": kb.search_mode,
        "chunk_size": kb.chunk_size,
        "chunk_overlap": kb.chunk_overlap,
        "zh_title_enhance": kb.zh_title_enhance,
        "default_vs_type": kb.default_vs_type,
        "vector_store_types": configured_vs_types(settings),
        "default_embed_model": kb.default_embed_model,
        "embed_models": sorted(settings.embed_models),
        "llm_models": sorted(settings.llm_models),
        "default_llm": settings.default_llm,
        "temperature": 0.7,
        "history_len": 3,
        "max_upload_mb": settings.api.max_upload_mb,
        "temp_knowledge_ttl_s": TEMP_KNOWLEDGE_TTL_S,
        "language": settings.webui.language,
    }


def build_chat_context(settings: Settings, kb_ctx: KbContext) -> ChatContext:
    """Model registry, LLM client, prompt templates, conversation store and temporary knowledge for chat."""
    return ChatContext(
        registry=LlmRegistry(settings.llm_models, settings.default_llm, worker_base_url(settings)),
        client=LlmClient(make_http_client()),
        prompts=load_prompt_templates(PROMPT_TEMPLATES_FILE),
        conversations=ConversationStore(kb_ctx.sessions),
        temp=TempKnowledgeStore(kb_ctx.embeddings, kb_ctx.default_embed_model, parse_workers=kb_ctx.parse_workers),
        ui_defaults=_ui_defaults(settings),
    )
