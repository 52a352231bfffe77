"""The worker's model lifecycle: which models are loaded, loading or unloaded; load and unload on request."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Query, Request

from server.llm.pool import ModelStatus
from server.llm_worker.deps import get_pool
from server.llm_worker.schemas import ModelStatusOut

router = APIRouter(prefix="/models", tags=["models"])


def _out(status: ModelStatus) -> ModelStatusOut:
    return ModelStatusOut(**asdict(status))


@router.get(
    "",
    summary="every served model: loaded, loading (with progress), unloaded or failed",
    response_model=list[ModelStatusOut],
)
async def list_models(request: Request) -> list[ModelStatusOut]:
    pool = get_pool(request)
    pool.refresh()
    return [_out(status) for status in pool.statuses()]


@router.get("/{name}", summary="one model's state", response_model=ModelStatusOut)
async def model_status(name: str, request: Request) -> ModelStatusOut:
    return _out(get_pool(request).status(name))


@router.post(
    "/{name}/load",
    summary="load a model (least recently used ones are unloaded to fit the budget); wait=false returns at once",
    response_model=ModelStatusOut,
)
async def load_model(name: str, request: Request, wait: bool = Query(False)) -> ModelStatusOut:
    return _out(await get_pool(request).load(name, wait=wait))


@router.post(
    "/{name}/unload",
    summary="unload a model once its running and waiting generations are done; its memory is freed",
    response_model=ModelStatusOut,
)
async def unload_model(name: str, request: Request) -> ModelStatusOut:
    return _out(await get_pool(request).unload(name))
