"""Asking our LLM worker to load and unload models, and which are loaded: its /models routes over httpx.

The worker's refusals keep their meaning here (unknown model 404, no room 503, too large 507, bad adapter 422), so
the API answers with the same status and the worker's message.
"""

from __future__ import annotations

from typing import Any

import httpx

from server.errors import (
    InvalidInput,
    LlmUnavailable,
    LlmUpstreamError,
    ModelTooLarge,
    NoRoomForModel,
    UnknownModel,
    ZhikuError,
)

LOAD_TIMEOUT_S = 900.0
"""Seconds a waited-for load may take: a 7B model read from a slow disk onto a GPU."""
STATUS_TIMEOUT_S = 5.0
_REFUSALS: dict[int, type[ZhikuError]] = {
    404: UnknownModel,
    422: InvalidInput,
    503: NoRoomForModel,
    507: ModelTooLarge,
}


def _worker_root(worker_url: str) -> str:
    """The worker's own routes sit beside its OpenAI ones: http://host:port/v1 -> http://host:port."""
    return worker_url.rstrip("/").removesuffix("/v1")


def _refusal(response: httpx.Response) -> ZhikuError:
    try:
        message = str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        message = response.text[:300]
    kind = _REFUSALS.get(response.status_code)
    if kind is None:
        return LlmUpstreamError(f"the LLM worker answered HTTP {response.status_code}: {message}")
    return kind(message)


class WorkerClient:
    def __init__(self, http: httpx.AsyncClient, worker_url: str) -> None:
        self._http = http
        self._root = _worker_root(worker_url)

    async def _call(self, method: str, path: str, timeout: float, **params: Any) -> Any:
        try:
            response = await self._http.request(method, f"{self._root}{path}", params=params, timeout=timeout)
        except httpx.HTTPError as error:
            raise LlmUnavailable(
                f"could not reach the LLM worker at {self._root} ({type(error).__name__}); start it with "
                "python -m server.llm_worker and check llm_worker.host/port in the settings"
            ) from None
        if response.status_code >= 400:
            raise _refusal(response)
        return response.json()

    async def statuses(self) -> dict[str, dict[str, Any]]:
        """Every model the worker serves, by name: state, progress, memory."""
        listed = await self._call("GET", "/models", STATUS_TIMEOUT_S)
        return {str(item["name"]): dict(item) for item in listed}

    async def load(self, name: str, *, wait: bool) -> dict[str, Any]:
        status: dict[str, Any] = await self._call(
            "POST", f"/models/{name}/load", LOAD_TIMEOUT_S, wait=str(wait).lower()
        )
        return status

    async def unload(self, name: str) -> dict[str, Any]:
        status: dict[str, Any] = await self._call("POST", f"/models/{name}/unload", LOAD_TIMEOUT_S)
        return status
