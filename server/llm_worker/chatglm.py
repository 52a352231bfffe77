"""The ChatGLM-6B `api.py` protocol: POST / with prompt and [question, answer] history pairs."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request

from server.errors import InvalidInput
from server.llm.generation import SamplingParams
from server.llm.prompt import Message
from server.llm_worker.deps import held_runner
from server.llm_worker.schemas import ChatGlmRequest

router = APIRouter()


def _messages(body: ChatGlmRequest) -> list[Message]:
    messages: list[Message] = []
    for question, answer in body.history:
        messages.append({"role": "user", "content": question})
        messages.append({"role": "assistant", "content": answer})
    messages.append({"role": "user", "content": body.prompt})
    return messages


def _new_tokens(body: ChatGlmRequest, prompt_tokens: int, max_new_tokens: int, context_length: int) -> int:
    # ChatGLM's max_length counts the prompt and the answer together.
    room = min(body.max_length, context_length) - prompt_tokens
    if room < 1:
        raise InvalidInput(
            f"max_length {body.max_length} (context_length {context_length}) leaves no room after the prompt's "
            f"{prompt_tokens} tokens; raise max_length or shorten the history"
        )
    return min(room, max_new_tokens)


@router.post("/", summary="ChatGLM-6B API: {prompt, history, max_length, top_p, temperature}")
async def chatglm_chat(body: ChatGlmRequest, request: Request) -> dict[str, Any]:
    async with held_runner(request, body.model) as runner:
        spec = runner.model.spec
        prompt_ids = runner.model.encode(_messages(body))
        budget = _new_tokens(body, len(prompt_ids), spec.max_new_tokens, spec.context_length)
        params = SamplingParams(max_new_tokens=budget, temperature=body.temperature, top_p=body.top_p)
        text, _ = await runner.complete(prompt_ids, params)
    return {
        "response": text,
        "history": [*body.history, [body.prompt, text]],
        "status": 200,
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
