"""Looking up the model a request names: the pool loads it on first use, and holds it while the request runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Request

from server.llm.pool import ModelPool
from server.llm.runner import ModelRunner


def get_pool(request: Request) -> ModelPool:
    pool: ModelPool = request.app.state.pool
    return pool


async def acquire_runner(request: Request, name: str | None) -> ModelRunner:
    """The runner serving `name` (None: the most recently used one), loaded if need be; pair with release."""
    return await get_pool(request).acquire(name)


def release_runner(request: Request, runner: ModelRunner) -> None:
    get_pool(request).release(runner.model.name)


@asynccontextmanager
async def held_runner(request: Request, name: str | None) -> AsyncIterator[ModelRunner]:
    """The runner of `name`, not unloaded until the block ends."""
    runner = await acquire_runner(request, name)
    try:
        yield runner
    finally:
        release_runner(request, runner)
