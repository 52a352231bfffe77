"""The worker's FastAPI app: OpenAI-compatible chat completions and the ChatGLM-6B API over loaded models."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request

from server import __version__
from server.llm.generation import ChatModel
from server.llm.runner import ModelRunner, describe
from server.llm_worker import chatglm, openai_routes
from server.llm_worker.errors import install_error_handlers


def _health(request: Request) -> dict[str, Any]:
    runners: dict[str, ModelRunner] = request.app.state.runners
    return {"status": "ok", "models": {name: runner.stats() for name, runner in runners.items()}}


def _models(request: Request) -> dict[str, Any]:
    runners: dict[str, ModelRunner] = request.app.state.runners
    created: int = request.app.state.created
    data = [
        {"id": name, "object": "model", "created": created, "owned_by": "zhiku", **describe(runner)}
        for name, runner in runners.items()
    ]
    return {"object": "list", "data": data}


def create_worker_app(models: Sequence[ChatModel]) -> FastAPI:
    """An app serving the given loaded models, one generation at a time per model (FIFO)."""
    if not models:
        raise ValueError("create_worker_app needs at least one model")
    runners = {model.name: ModelRunner(model) for model in models}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for runner in runners.values():
            runner.start()
        try:
            yield
        finally:
            for runner in runners.values():
                runner.close()

    app = FastAPI(title="Zhiku LLM worker", version=__version__, lifespan=lifespan)
    app.state.runners = runners
    app.state.created = int(time.time())
    install_error_handlers(app)
    app.add_api_route("/health", _health, methods=["GET"], summary="ready; running and waiting generations per model")
    app.add_api_route("/v1/models", _models, methods=["GET"], summary="served models (OpenAI list format)")
    app.include_router(openai_routes.router)
    app.include_router(chatglm.router)
    return app
