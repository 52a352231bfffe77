"""OpenAI-compatible routes on the API: /v1/models, /v1/chat/completions (optionally over a knowledge base),
/v1/embeddings. Any OpenAI client works with base_url http://host:7861/v1 and api.api_key (if set) as its key.

The extra request fields `knowledge_base_name` (+ `top_k`, `score_threshold`, `search_mode`, `prompt_name`) turn a
completion into knowledge-base chat: the last user message is the question and the answer ends with its numbered
sources.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from server.api.deps import Chat, Embeddings, Models
from server.api.envelope import describe_validation, openai_error
from server.api.fields import MAX_TOKENS_LIMIT, SearchFields
from server.api.filters import FILTER_HELP, SearchFilter, file_filter
from server.api.openai_schemas import ChatCompletion, EmbeddingList, ModelList
from server.api.sse import event_line
from server.chat.llm_client import DEFAULT_TEMPERATURE, ChatDelta, ChatParams, collect
from server.chat.service import ChatOptions
from server.errors import InvalidInput, ZhikuError
from server.knowledge_base.search import SearchQuery
from server.retrieval.modes import SEARCH_MODE_HELP, SearchMode


class OpenAiErrors(APIRoute):
    """Errors also carry {"error": {"message", "type", "code"}}, which OpenAI clients show, beside our envelope."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except ZhikuError as error:
                return openai_error(error.status_code, error.message, type(error).__name__)
            except RequestValidationError as error:
                return openai_error(422, describe_validation(error), "invalid_request_error")

        return route


router = APIRouter(prefix="/v1", tags=["OpenAI compatible"], route_class=OpenAiErrors)

PASSTHROUGH = ("top_p", "stop", "seed", "presence_penalty", "frequency_penalty")
"""Request fields handed to the model endpoint unchanged."""


class OpenAiMessage(BaseModel):
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(str(part.get("text", "")) for part in self.content if part.get("type") == "text")
        return self.content or ""


class CompletionBody(SearchFields):
    model_config = ConfigDict(extra="allow")

    model: str | None = Field(None, description="a key of llm_models (default: default_llm)")
    messages: list[OpenAiMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    temperature: float = Field(DEFAULT_TEMPERATURE, ge=0.0, le=2.0)
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT)
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT)
    knowledge_base_name: str | list[str] | None = Field(
        None, description="answer from this knowledge base (or these, fused), citing sources"
    )
    search_mode: SearchMode | None = Field(None, description=SEARCH_MODE_HELP)
    filter: SearchFilter | None = Field(None, description=FILTER_HELP)
    prompt_name: str = "default"

    def params(self) -> ChatParams:
        extra = {key: getattr(self, key) for key in PASSTHROUGH if getattr(self, key, None) is not None}
        extra["stream_options"] = {"include_usage": True}
        return ChatParams(self.temperature, self.max_completion_tokens or self.max_tokens, extra)

    def chat_messages(self) -> list[dict[str, str]]:
        return [{"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in self.messages]


class EmbeddingsBody(BaseModel):
    model: str
    input: str | list[str] = Field(description="a text or a list of texts (token arrays are not accepted)")
    encoding_format: Literal["float", "base64"] = "float"


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def _chunk(cid: str, model: str, created: int, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [choice]}


async def _openai_events(
    deltas: AsyncIterator[ChatDelta], model: str, include_usage: bool
) -> AsyncGenerator[str, None]:
    cid, created = _completion_id(), int(time.time())
    yield event_line(_chunk(cid, model, created, {"role": "assistant", "content": ""}, None))
    finish, usage = "stop", None
    try:
        async for delta in deltas:
            usage = delta.usage or usage
            finish = delta.finish_reason or finish
            if delta.text:
                yield event_line(_chunk(cid, model, created, {"content": delta.text}, None))
    except ZhikuError as error:
        yield event_line({"error": {"message": error.message, "type": "upstream_error", "code": error.status_code}})
        return
    yield event_line(_chunk(cid, model, created, {}, finish))
    if include_usage and usage:
        yield event_line({**_chunk(cid, model, created, {}, None), "choices": [], "usage": usage})
    yield "data: [DONE]\r\n\r\n"


@router.get("/models", summary="Chat and embedding models (OpenAI format)", response_model=ModelList)
async def list_models(models: Models, embeddings: Embeddings) -> dict[str, Any]:
    names = [(name, "zhiku") for name in models.names()]
    names += [(name, "zhiku-embeddings") for name in embeddings.names()]
    data = [{"id": name, "object": "model", "created": 0, "owned_by": owner} for name, owner in names]
    return {"object": "list", "data": data}


@router.post(
    "/chat/completions",
    summary="Chat completion (OpenAI format; stream=true: chat.completion.chunk events)",
    response_model=ChatCompletion,
)
async def chat_completions(chat: Chat, body: CompletionBody) -> Response:
    options = ChatOptions(body.model, body.params(), body.prompt_name)
    search = SearchQuery(
        "", body.top_k, body.score_threshold, search_mode=body.search_mode, filter=file_filter(body.filter)
    )
    model, deltas = await chat.completion(body.chat_messages(), options, body.knowledge_base_name, search)
    if body.stream:
        include_usage = bool((body.stream_options or {}).get("include_usage"))
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(
            _openai_events(deltas, model, include_usage), media_type="text/event-stream", headers=headers
        )
    text, finish, usage = await collect(deltas)
    message = {"role": "assistant", "content": text}
    choice = {"index": 0, "message": message, "finish_reason": finish or "stop"}
    completion = {
        "id": _completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": usage,
    }
    return JSONResponse(completion)


def _embedding_value(row: np.ndarray[Any, Any], encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(row.astype("<f4").tobytes()).decode("ascii")
    return [float(x) for x in row]


@router.post(
    "/embeddings", summary="Embeddings with a configured embedding model (OpenAI format)", response_model=EmbeddingList
)
async def embeddings(embeddings: Embeddings, body: EmbeddingsBody) -> dict[str, Any]:
    texts = [body.input] if isinstance(body.input, str) else body.input
    if not texts:
        raise InvalidInput("input is empty; send a text or a list of texts")
    vectors = await run_in_threadpool(embeddings.embed_checked, body.model, texts)
    data = [
        {"object": "embedding", "index": index, "embedding": _embedding_value(row, body.encoding_format)}
        for index, row in enumerate(vectors)
    ]
    usage = {"prompt_tokens": 0, "total_tokens": 0}  # token counts are not computed
    return {"object": "list", "data": data, "model": body.model, "usage": usage}
