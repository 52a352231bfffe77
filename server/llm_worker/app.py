"""The worker's FastAPI app: OpenAI-compatible chat completions and the ChatGLM-6B API over a pool of models.

Models load on first use (or on request, /models/{name}/load) and are unloaded least recently used first when the
memory budget needs room (server/llm/pool.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request

from server import __version__
from server.errors import ZhikuError
from server.llm.pool import ModelPool
from server.llm_worker import chatglm, model_routes, openai_routes
from server.llm_worker.deps import get_pool
from server.llm_worker.errors import install_error_handlers

logger = logging.getLogger(__name__)


def _health(request: Request) -> dict[str, Any]:
    statuses = get_pool(request).statuses()
    return {"status": "ok", "models": {s.name: {**s.stats, "state": s.state} for s in statuses}}


def _models(request: Request) -> dict[str, Any]:
    pool = get_pool(request)
    pool.refresh()
    created: int = request.app.state.created
    data = [
        {
            "id": s.name,
            "object": "model",
            "created": created,
            "owned_by": "zhiku",
            "state": s.state,
            "context_length": s.context_length,
            "max_new_tokens": s.max_new_tokens,
            **s.stats,
        }
        for s in pool.statuses()
    ]
    return {"object": "list", "data": data}


async def _preload(pool: ModelPool, names: Sequence[str]) -> None:
    for name in names:
        try:
            await pool.load(name, wait=True)
        except ZhikuError as error:  # the worker still serves the others; the status says why
            logger.error("preloading %s failed: %s", name, error.message)


def create_worker_app(make_pool: Callable[[], ModelPool], preload: Sequence[str] = ()) -> FastAPI:
    """An app serving the models of the pool `make_pool` builds at start-up, one generation at a time per model."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = app.state.pool = make_pool()
        preloading = asyncio.create_task(_preload(pool, preload))
        try:
            yield
        finally:
            await preloading
            await pool.aclose()

    app = FastAPI(title="Zhiku LLM worker", version=__version__, lifespan=lifespan)
    app.state.created = int(time.time())
    install_error_handlers(app)
    app.add_api_route("/health", _health, methods=["GET"], summary="ready; each model's state and generations")
    app.add_api_route("/v1/models", _models, methods=["GET"], summary="served models (OpenAI list format)")
    app.include_router(model_routes.router)
    app.include_router(openai_routes.router)
    app.include_router(chatglm.router)
    return app
