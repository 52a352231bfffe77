"""Model routes (Chatchat 0.2 paths): which chat models are configured and running. Secrets never leave."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import ConfigDict, Field

from server.api.deps import Models
from server.api.envelope import Envelope
from server.api.fields import RequestBody
from server.api.schemas import ModelConfigOut, ModelStateOut, Reply

router = APIRouter(prefix="/llm_model", tags=["LLM Model Management"])


class _Body(RequestBody):
    model_config = ConfigDict(protected_namespaces=())


class ConfigModelsBody(_Body):
    types: list[str] = Field(default_factory=lambda: ["local", "online"], description="local, online")


class ModelBody(_Body):
    model_name: str = Field(min_length=1)


class StopBody(ModelBody):
    controller_address: str | None = Field(None, description="accepted for Chatchat clients; there is no controller")


class ChangeBody(_Body):
    model_name: str = Field(min_length=1, description="the local model to unload")
    new_model_name: str = Field(min_length=1, description="the local model to load in its place")
    wait: bool = Field(True, description="answer once the new model is loaded (false: at once; follow the progress "
                       "in list_running_models)")  # fmt: skip
    controller_address: str | None = Field(None, description="accepted for Chatchat clients; there is no controller")


class LoadBody(_Body):
    model_name: str = Field(min_length=1)
    wait: bool = Field(False, description="answer once loaded (default: at once, state loading)")


@router.post(
    "/list_running_models",
    summary="Every online model, and every local one with its state: loaded, loading (progress), unloaded, failed",
    response_model=Reply[dict[str, ModelConfigOut]],
)
@router.get("/list_running_models", include_in_schema=False, operation_id="list_running_models_get")
async def list_running_models(models: Models) -> Envelope:
    running, note = await models.running()
    return Envelope(running, note)


@router.post(
    "/list_config_models",
    summary="Configured models by type: local (our worker) and online (endpoints)",
    response_model=Reply[dict[str, dict[str, ModelConfigOut]]],
)
async def list_config_models(models: Models, body: ConfigModelsBody | None = None) -> Envelope:
    return Envelope(models.configured((body or ConfigModelsBody()).types))


@router.post(
    "/get_model_config", summary="One model's settings, without its api_key", response_model=Reply[ModelConfigOut]
)
async def get_model_config(models: Models, body: ModelBody) -> Envelope:
    return Envelope(models.config(body.model_name))


@router.post(
    "/change",
    summary="Unload a local model and load another in its place (the budget may unload more, least recently used)",
    response_model=Reply[ModelStateOut],
)
async def change_model(models: Models, body: ChangeBody) -> Envelope:
    return Envelope(await models.change(body.model_name, body.new_model_name, wait=body.wait))


@router.post(
    "/stop",
    summary="Unload a local model once its running answers are done; its memory is freed",
    response_model=Reply[ModelStateOut],
)
async def stop_model(models: Models, body: StopBody) -> Envelope:
    return Envelope(await models.stop(body.model_name))


@router.post(
    "/load",
    summary="Load a local model now (it would load on its first request anyway); progress in list_running_models",
    response_model=Reply[ModelStateOut],
)
async def load_model(models: Models, body: LoadBody) -> Envelope:
    return Envelope(await models.load(body.model_name, wait=body.wait))
