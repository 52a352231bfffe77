"""The model routes' answers (Chatchat 0.2's /llm_model/*): which chat models are configured, which our worker has
loaded, loading or unloaded, and switching them (change, stop, load) through the worker."""

from __future__ import annotations

from typing import Any

from server.chat.llm_client import LlmClient
from server.chat.models import LlmRegistry
from server.chat.worker_client import WorkerClient
from server.errors import InvalidInput, ZhikuError

_STATE_KEYS = ("state", "progress", "stage", "device", "error")


def public_state(status: dict[str, Any]) -> dict[str, Any]:
    """What the API shows of a worker model's status (no paths): state, progress, memory."""
    shown = {key: status.get(key) for key in _STATE_KEYS}
    shown["memory_bytes"] = status.get("bytes", 0)
    shown["name"] = status.get("name")
    return shown


class ModelService:
    def __init__(self, registry: LlmRegistry, client: LlmClient, worker: WorkerClient) -> None:
        self._registry = registry
        self._client = client
        self._worker = worker

    def names(self) -> list[str]:
        return self._registry.names()

    async def running(self) -> tuple[dict[str, dict[str, Any]], str]:
        """Every OpenAI-endpoint model (state online) and every local model our worker serves, each with its state
        (loaded, loading with progress, unloaded, failed); a note when the worker could not be asked."""
        registry = self._registry
        listed = {name: {**config, "state": "online"} for name, config in registry.public_configs(
            registry.names_by_engine("openai")).items()}  # fmt: skip
        note = "success"
        local = registry.names_by_engine("transformers")
        if local:
            try:
                states = await self._worker.statuses()
            except ZhikuError as error:
                states = {}
                note = f"the LLM worker does not answer, so its models are not listed: {error.message}"
            for name in local:
                if name in states:
                    state = public_state(states[name])
                    state.pop("name")
                    listed[name] = {**registry.public_config(name), **state}
        return dict(sorted(listed.items())), note

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

    def _local(self, name: str) -> str:
        config = self._registry.check_known(name)
        if config.engine != "transformers":
            raise InvalidInput(
                f"model {name!r} is an online model (engine: openai): it is not loaded or unloaded here; pass it as "
                "model_name in chat requests"
            )
        return name

    async def change(self, model_name: str, new_model_name: str, *, wait: bool) -> dict[str, Any]:
        """Unload `model_name`, then load `new_model_name` (Chatchat 0.2's change); the new model's state."""
        old, new = self._local(model_name), self._local(new_model_name)
        if old != new:
            await self._worker.unload(old)
        return public_state(await self._worker.load(new, wait=wait))

    async def stop(self, model_name: str) -> dict[str, Any]:
        """Unload a local model once its generations are done; its memory is freed."""
        return public_state(await self._worker.unload(self._local(model_name)))

    async def load(self, model_name: str, *, wait: bool) -> dict[str, Any]:
        return public_state(await self._worker.load(self._local(model_name), wait=wait))
