"""Calling OpenAI-compatible chat endpoints (our worker, vLLM, Ollama, hosted APIs) over httpx, streaming.

Every failure becomes LlmUnavailable (could not reach it) or LlmUpstreamError (it answered, but with an error or
something that is not the OpenAI protocol). Messages name the endpoint with secrets masked; keys never appear.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from server.chat.models import LlmEndpoint, mask_url
from server.errors import LlmUnavailable, LlmUpstreamError, ModelTooLarge, ToolCallingUnsupported, ZhikuError

CONNECT_TIMEOUT_S = 5.0
"""Seconds to open a connection; an endpoint that is down fails fast."""
READ_TIMEOUT_S = 300.0
"""Seconds to wait between two pieces of an answer: a large model on a CPU can be this slow to start."""
LIST_TIMEOUT_S = 3.0
"""Seconds for GET /models, used only to report which models are running."""
_EXCERPT = 300

Message = dict[str, str]


@dataclass(frozen=True)
class ChatDelta:
    """One piece of a streamed answer; the last ones may carry the finish reason and token usage."""

    text: str
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None


DEFAULT_TEMPERATURE = 0.7
"""What a chat request gets when it names no temperature (Chatchat 0.2's default)."""


@dataclass(frozen=True)
class ChatParams:
    temperature: float = DEFAULT_TEMPERATURE
    max_tokens: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Further OpenAI request fields passed through unchanged (top_p, stop, seed, stream_options…)."""


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the model wrote it


@dataclass(frozen=True)
class AssistantTurn:
    """A whole (not streamed) answer of a model that was offered tools: its text and the calls it asks for."""

    content: str
    tool_calls: list[ToolCall]


def make_http_client() -> httpx.AsyncClient:
    timeout = httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
    return httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_connections=64, max_keepalive_connections=16))


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def _excerpt(text: str, secret: str | None) -> str:
    text = " ".join(text.split())[:_EXCERPT]
    return text.replace(secret, "***") if secret else text


def _unreachable(endpoint: LlmEndpoint, error: Exception) -> LlmUnavailable:
    reason = type(error).__name__ + (f": {_excerpt(str(error), endpoint.api_key)}" if str(error) else "")
    if endpoint.engine == "transformers":
        hint = "start the LLM worker (python -m server.llm_worker) and check llm_worker.host/port in the settings"
    else:
        hint = f"check base_url of model {endpoint.name!r} in llm_models and that the server there is running"
    return LlmUnavailable(f"could not reach the LLM endpoint {endpoint.shown_url} ({reason}); {hint}")


def _status_error(endpoint: LlmEndpoint, status: int, body: str) -> ZhikuError:
    """The endpoint's refusal as our error; a busy (503) or full (507) endpoint keeps its status for our client."""
    detail = _excerpt(body, endpoint.api_key)
    if status in (401, 403):
        return LlmUpstreamError(
            f"the LLM endpoint {endpoint.shown_url} refused the request (HTTP {status}: {detail}); check api_key of "
            f"model {endpoint.name!r} in llm_models"
        )
    if status == 404:
        return LlmUpstreamError(
            f"the LLM endpoint {endpoint.shown_url} answered HTTP 404 ({detail}): check that base_url ends in /v1 "
            f"and that it serves the model {endpoint.model!r}"
        )
    if status == 503:  # e.g. our worker while its memory budget is held by models that are answering
        return LlmUnavailable(f"the LLM endpoint {endpoint.shown_url} cannot serve now (HTTP 503: {detail})")
    if status == 507:
        return ModelTooLarge(f"the LLM endpoint {endpoint.shown_url} has no room for this model (HTTP 507: {detail})")
    return LlmUpstreamError(f"the LLM endpoint {endpoint.shown_url} answered HTTP {status}: {detail}")


def _garbage(endpoint: LlmEndpoint, what: str) -> LlmUpstreamError:
    return LlmUpstreamError(
        f"the LLM endpoint {endpoint.shown_url} did not answer in the OpenAI chat format ({what}); "
        "check that base_url points at an OpenAI-compatible /v1 API"
    )


_DONE = ChatDelta("", "[DONE]")


def parse_event(endpoint: LlmEndpoint, line: str) -> ChatDelta | None:
    """One SSE line of a chat stream: a delta, `_DONE`, or None for lines that carry nothing."""
    if not line.startswith("data:"):
        return None
    data = line[5:].strip()
    if data == "[DONE]":
        return _DONE
    try:
        chunk = json.loads(data)
    except json.JSONDecodeError:
        raise _garbage(endpoint, f"not JSON: {_excerpt(data, endpoint.api_key)!r}") from None
    if not isinstance(chunk, dict):
        raise _garbage(endpoint, "an event is not a JSON object")
    if chunk.get("error"):
        raise LlmUpstreamError(
            f"the LLM endpoint {endpoint.shown_url} reported: {_excerpt(str(chunk['error']), endpoint.api_key)}"
        )
    choices, usage = chunk.get("choices"), chunk.get("usage")
    if not isinstance(choices, list):
        raise _garbage(endpoint, "an event has no 'choices' list")
    if not choices:
        return ChatDelta("", None, usage) if isinstance(usage, dict) else None
    choice: dict[str, Any] = choices[0] if isinstance(choices[0], dict) else {}
    delta = choice.get("delta")
    content = delta.get("content") if isinstance(delta, dict) else None
    text = content if isinstance(content, str) else ""
    return ChatDelta(text, choice.get("finish_reason"), usage if isinstance(usage, dict) else None)


class LlmClient:
    """Streams chat completions; one shared httpx client keeps connections to each endpoint alive."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def aclose(self) -> None:
        await self._http.aclose()

    async def stream(
        self, endpoint: LlmEndpoint, messages: Sequence[Message], params: ChatParams
    ) -> AsyncGenerator[ChatDelta, None]:
        """Yield the answer piece by piece (always streamed upstream, even when the caller wants it whole)."""
        payload: dict[str, Any] = {
            **params.extra,
            "model": endpoint.model,
            "messages": list(messages),
            "stream": True,
            "temperature": params.temperature,
        }
        if params.max_tokens is not None:
            payload["max_tokens"] = params.max_tokens
        url = f"{endpoint.base_url}/chat/completions"
        headers = {**_headers(endpoint.api_key), "Accept": "text/event-stream"}
        try:
            async with self._http.stream("POST", url, json=payload, headers=headers) as response:
                if response.status_code >= 400:
                    body = (await response.aread()).decode("utf-8", "replace")
                    raise _status_error(endpoint, response.status_code, body)
                if "text/event-stream" not in response.headers.get("content-type", ""):
                    body = (await response.aread()).decode("utf-8", "replace")
                    raise _garbage(endpoint, f"not an event stream: {_excerpt(body, endpoint.api_key)!r}")
                async for line in response.aiter_lines():
                    delta = parse_event(endpoint, line)
                    if delta is _DONE:
                        return
                    if delta is not None:
                        yield delta
        except (httpx.TransportError, httpx.InvalidURL) as error:
            raise _unreachable(endpoint, error) from None

    async def complete_with_tools(
        self,
        endpoint: LlmEndpoint,
        messages: Sequence[dict[str, Any]],
        params: ChatParams,
        tools: list[dict[str, Any]],
    ) -> AssistantTurn:
        """One non-streamed turn with the OpenAI `tools` field; raises ToolCallingUnsupported when the endpoint
        refuses the field."""
        payload: dict[str, Any] = {
            **params.extra,
            "model": endpoint.model,
            "messages": list(messages),
            "stream": False,
            "temperature": params.temperature,
            "tools": tools,
            "tool_choice": "auto",
        }
        if params.max_tokens is not None:
            payload["max_tokens"] = params.max_tokens
        try:
            response = await self._http.post(
                f"{endpoint.base_url}/chat/completions", json=payload, headers=_headers(endpoint.api_key)
            )
        except (httpx.TransportError, httpx.InvalidURL) as error:
            raise _unreachable(endpoint, error) from None
        if response.status_code >= 400:
            if response.status_code in (400, 422, 501) and "tool" in response.text.lower():
                raise ToolCallingUnsupported(
                    f"model {endpoint.name!r} cannot call tools: its endpoint refused the request "
                    f"({_excerpt(response.text, endpoint.api_key)}); pick a model whose server supports function "
                    "calling (e.g. vLLM with --enable-auto-tool-choice, Ollama, a hosted API)"
                )
            raise _status_error(endpoint, response.status_code, response.text)
        return _assistant_turn(endpoint, response)

    async def list_models(self, base_url: str, api_key: str | None) -> list[str]:
        """Model ids served at `base_url` (GET /models)."""
        shown = mask_url(base_url)
        try:
            response = await self._http.get(f"{base_url}/models", headers=_headers(api_key), timeout=LIST_TIMEOUT_S)
        except httpx.HTTPError as error:
            raise LlmUnavailable(f"could not reach {shown} ({type(error).__name__})") from None
        if response.status_code >= 400:
            raise LlmUpstreamError(f"{shown}/models answered HTTP {response.status_code}")
        try:
            return [str(item["id"]) for item in response.json()["data"]]
        except (ValueError, KeyError, TypeError):
            raise LlmUpstreamError(f"{shown}/models did not answer an OpenAI model list") from None


def _assistant_turn(endpoint: LlmEndpoint, response: httpx.Response) -> AssistantTurn:
    try:
        message = response.json()["choices"][0]["message"]
        calls = [
            ToolCall(
                str(call.get("id") or f"call_{index}"),
                call["function"]["name"],
                call["function"].get("arguments") or "{}",
            )
            for index, call in enumerate(message.get("tool_calls") or [])
        ]
        return AssistantTurn(str(message.get("content") or ""), calls)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise _garbage(endpoint, "no choices[0].message with content or tool_calls") from None


async def started(stream: AsyncGenerator[ChatDelta, None]) -> AsyncGenerator[ChatDelta, None]:
    """Run `stream` up to its first piece, so that failures before any output raise here (as a proper HTTP
    status) instead of inside an already-started event stream."""
    try:
        first = await anext(stream)
    except StopAsyncIteration:
        return _chain(None, stream)
    except BaseException:
        await stream.aclose()
        raise
    return _chain(first, stream)


async def _chain(first: ChatDelta | None, rest: AsyncGenerator[ChatDelta, None]) -> AsyncGenerator[ChatDelta, None]:
    try:
        if first is not None:
            yield first
        async for item in rest:
            yield item
    finally:
        await rest.aclose()


async def collect(stream: AsyncIterator[ChatDelta]) -> tuple[str, str | None, dict[str, Any] | None]:
    """The whole answer, its finish reason and usage."""
    parts: list[str] = []
    finish, usage = None, None
    async for delta in stream:
        parts.append(delta.text)
        finish = delta.finish_reason or finish
        usage = delta.usage or usage
    return "".join(parts), finish, usage
