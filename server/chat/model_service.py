"""The model routes' answers (Chatchat 0.2's /llm_model/*): which chat models are configured and running."""

from __future__ import annotations

from typing import Any, NoReturn

from server.chat.llm_client import LlmClient
from server.chat.models import LlmRegistry
from server.errors import ModelStopUnsupported, ModelSwitchUnsupported, ZhikuError


class ModelService:
    def __init__(self, registry: LlmRegistry, client: LlmClient) -> None:
        self._registry = registry
        self._client = client

    def names(self) -> list[str]:
        return self._registry.names()

    async def running(self) -> tuple[dict[str, dict[str, Any]], str]:
        """Models ready to answer (every OpenAI-endpoint model and those our worker serves), and a note when the
        worker could not be asked."""
        registry = self._registry
        names = registry.names_by_engine("openai")
        note = "success"
        local = registry.names_by_engine("transformers")
        if local:
            try:
                served = set(await self._client.list_models(registry.worker_url, None))
                names += [name for name in local if name in served]
            except ZhikuError as error:
                note = f"the LLM worker does not answer, so its models are not listed: {error.message}"
        return registry.public_configs(sorted(names)), note

    def configured(self, types: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
        """Configured models by type: local (our worker) and online (endpoints)."""
        registry = self._registry
        by_type: dict[str, dict[str, dict[str, Any]]] = {}
        if "local" in types:
            by_type["local"] = registry.public_configs(registry.names_by_engine("transformers"))
        if "online" in types:
            by_type["online"] = registry.public_configs(registry.names_by_engine("openai"))
        return by_type

    def config(self, name: str) -> dict[str, Any]:
        return self._registry.public_config(name)

    def change(self, model_name: str, new_model_name: str) -> NoReturn:
        self._registry.check_known(model_name)
        self._registry.check_known(new_model_name)
        raise ModelSwitchUnsupported(
            "switching models at run time is not supported: every model in llm_models is available at once; pass "
            "model_name in each chat request, or change default_llm in configs/settings.yaml and restart the API "
            "and the LLM worker (python -m server.llm_worker)"
        )

    def stop(self, model_name: str) -> NoReturn:
        """Chatchat's /llm_model/stop released a FastChat worker. Ours cannot unload a model while it runs, and a
        remote endpoint is not ours to stop: say which, and what to do instead."""
        config = self._registry.check_known(model_name)
        if config.engine == "openai":
            shown = self._registry.public_config(model_name)["base_url"]
            raise ModelStopUnsupported(
                f"model {model_name!r} is served by its own endpoint ({shown}); stop it there, or remove it from "
                "llm_models"
            )
        raise ModelStopUnsupported(
            f"the LLM worker keeps model {model_name!r} loaded while it runs and cannot unload it on request; stop "
            "the worker process (Ctrl+C on python -m server.llm_worker, or stop startup.py) to free its memory"
        )
