"""POST /v1/chat/completions: the OpenAI chat-completions protocol, streamed (SSE) or whole."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from server.llm.generation import Completion, SamplingParams
from server.llm.limits import token_budget
from server.llm.runner import ModelRunner
from server.llm_worker.deps import acquire_runner, release_runner
from server.llm_worker.errors import error_body
from server.llm_worker.schemas import ChatCompletionRequest

logger = logging.getLogger(__name__)
router = APIRouter()


@dataclass(frozen=True)
class _Call:
    """One request, prepared: who answers, the prompt, the parameters, and the ids that go in every chunk."""

    runner: ModelRunner
    prompt_ids: list[int]
    params: SamplingParams
    id: str
    created: int

    def envelope(self, kind: str) -> dict[str, Any]:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.runner.model.name}

    def usage(self, done: Completion) -> dict[str, int]:
        prompt = len(self.prompt_ids)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": done.completion_tokens,
            "total_tokens": prompt + done.completion_tokens,
        }

    def chunk(self, delta: dict[str, str], finish_reason: str | None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {**self.envelope("chat.completion.chunk"), "choices": [choice]}


async def _prepare(body: ChatCompletionRequest, request: Request) -> _Call:
    """The call, with its model held (not unloaded) until `_finish`; loads the model if it is not loaded."""
    runner = await acquire_runner(request, body.model)
    try:
        messages = [{"role": message.role, "content": message.text()} for message in body.messages]
        prompt_ids = runner.model.encode(messages)
        budget = token_budget(runner.model.spec, len(prompt_ids), body.requested_tokens())
        params = SamplingParams(budget, body.temperature, body.top_p, body.stop_strings())
    except BaseException:
        release_runner(request, runner)
        raise
    return _Call(runner, prompt_ids, params, f"chatcmpl-{uuid.uuid4().hex}", int(time.time()))


def _sse(payload: dict[str, Any] | str) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n"


async def _events(call: _Call, include_usage: bool, request: Request) -> AsyncIterator[str]:
    try:
        async with aclosing(_stream_events(call, include_usage)) as events:
            async for event in events:
                yield event
    finally:
        release_runner(request, call.runner)


async def _stream_events(call: _Call, include_usage: bool) -> AsyncGenerator[str, None]:
    yield _sse(call.chunk({"role": "assistant", "content": ""}, None))
    try:
        # aclosing: a client that leaves closes this generator, which closes the runner's stream, which cancels.
        async with aclosing(call.runner.stream(call.prompt_ids, call.params)) as items:
            async for item in items:
                if isinstance(item, str):
                    yield _sse(call.chunk({"content": item}, None))
                    continue
                yield _sse(call.chunk({}, item.finish_reason))
                if include_usage:
                    yield _sse({**call.envelope("chat.completion.chunk"), "choices": [], "usage": call.usage(item)})
    except Exception as error:
        logger.exception("streamed generation failed on model %s", call.runner.model.name)
        yield _sse(error_body(f"generation failed: {type(error).__name__}: {error}", 500, "internal_error"))
    yield _sse("[DONE]")


class _ClosingStream(StreamingResponse):
    """Closes its body generator however the response ends, so a client that leaves stops the generation now."""

    async def __call__(self, *args: Any) -> None:
        try:
            await super().__call__(*args)
        finally:
            body = self.body_iterator
            if hasattr(body, "aclose"):
                await body.aclose()


@router.post("/v1/chat/completions", summary="OpenAI chat completions (stream: SSE chunks, then [DONE])")
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
    call = await _prepare(body, request)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return _ClosingStream(_events(call, include_usage, request), media_type="text/event-stream")
    try:
        text, done = await call.runner.complete(call.prompt_ids, call.params)
    finally:
        release_runner(request, call.runner)
    choice = {
        "index": 0,
        "message": {"role": "assistant", "content": text},
        "logprobs": None,
        "finish_reason": done.finish_reason,
    }
    return JSONResponse({**call.envelope("chat.completion"), "choices": [choice], "usage": call.usage(done)})
