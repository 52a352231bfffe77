"""Model routes (Chatchat 0.2 paths): which chat models are configured and running. Secrets never leave."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import ConfigDict, Field

from server.api.deps import Models
from server.api.envelope import Envelope
from server.api.fields import RequestBody
from server.api.schemas import ModelConfigOut, Reply

router = APIRouter(prefix="/llm_model", tags=["LLM Model Management"])


class _Body(RequestBody):
    model_config = ConfigDict(protected_namespaces=())


class ConfigModelsBody(_Body):
    types: list[str] = Field(default_factory=lambda: ["local", "online"], description="local, online")


class ModelBody(_Body):
    model_name: str = Field(min_length=1)


class ChangeBody(_Body):
    model_name: str = Field(min_length=1)
    new_model_name: str = Field(min_length=1)


@router.post(
    "/list_running_models",
    summary="Models ready to answer: the ones our worker serves, and every OpenAI-endpoint model",
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


@router.post("/change", summary="Not supported: models come from the settings", response_model=Reply[None])
async def change_model(models: Models, body: ChangeBody) -> Envelope:
    models.change(body.model_name, body.new_model_name)


class StopBody(RequestBody):
    model_config = ConfigDict(protected_namespaces=())

    model_name: str = Field(min_length=1)
    controller_address: str | None = Field(None, description="accepted for Chatchat clients; there is no controller")


@router.post(
    "/stop",
    summary="Stop a model: says why it cannot be (remote endpoint, or our worker keeps its models loaded)",
    response_model=Reply[None],
)
async def stop_model(models: Models, body: StopBody) -> Envelope:
    models.stop(body.model_name)
