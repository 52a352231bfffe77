"""Model routes (Chatchat 0.2 paths): which chat models are configured and running. Secrets never leave."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from server.api.envelope import Envelope
from server.api.routes.chat_deps import Chat
from server.errors import ModelSwitchUnsupported, ZhikuError

router = APIRouter(prefix="/llm_model", tags=["LLM Model Management"])


class _Body(BaseModel):
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
)
@router.get("/list_running_models", include_in_schema=False, operation_id="list_running_models_get")
async def list_running_models(chat: Chat) -> Envelope:
    registry = chat.registry
    names = registry.names_by_engine("openai")
    msg = "success"
    local = registry.names_by_engine("transformers")
    if local:
        try:
            served = set(await chat.client.list_models(registry.worker_url, None))
            names += [name for name in local if name in served]
        except ZhikuError as error:
            msg = f"the LLM worker does not answer, so its models are not listed: {error.message}"
    return Envelope(registry.public_configs(sorted(names)), msg)


@router.post("/list_config_models", summary="Configured models by type: local (our worker) and online (endpoints)")
async def list_config_models(chat: Chat, body: ConfigModelsBody | None = None) -> Envelope:
    types = (body or ConfigModelsBody()).types
    registry = chat.registry
    by_type: dict[str, Any] = {}
    if "local" in types:
        by_type["local"] = registry.public_configs(registry.names_by_engine("transformers"))
    if "online" in types:
        by_type["online"] = registry.public_configs(registry.names_by_engine("openai"))
    return Envelope(by_type)


@router.post("/get_model_config", summary="One model's settings, without its api_key")
async def get_model_config(chat: Chat, body: ModelBody) -> Envelope:
    return Envelope(chat.registry.public_config(body.model_name))


@router.post("/change", summary="Not supported: models come from the settings")
async def change_model(chat: Chat, body: ChangeBody) -> Envelope:
    chat.registry.check_known(body.model_name)
    chat.registry.check_known(body.new_model_name)
    raise ModelSwitchUnsupported(
        "switching models at run time is not supported: every model in llm_models is available at once; pass "
        "model_name in each chat request, or change default_llm in configs/settings.yaml and restart the API and "
        "the LLM worker (python -m server.llm_worker)"
    )
