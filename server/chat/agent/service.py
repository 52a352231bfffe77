"""Agent chat (Chatchat 0.2's /chat/agent_chat): a tool-calling loop over the OpenAI-compatible chat API.

Each round the model gets the conversation and the tools; the calls it asks for are run and their answers added
to the conversation; a round without calls is the final answer. Events, as Chatchat's: {"answer": text the model
wrote beside its calls}, {"tools": [lines describing one call]}, then {"final_answer": text}; with stream=false one
{"answer", "final_answer"}. The model's first turn is taken before the events are returned, so an unknown model, a
model that cannot call tools or an endpoint that is down is a plain HTTP error, not an event.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from starlette.concurrency import run_in_threadpool

from server.chat.agent.tools import ToolBox
from server.chat.conversations import ChatMessage
from server.chat.llm_client import AssistantTurn, ChatParams, LlmClient, ToolCall
from server.chat.models import LlmEndpoint, LlmRegistry
from server.chat.prompts import PromptTemplates
from server.chat.service import ChatOptions
from server.errors import InvalidInput, ToolCallingUnsupported, ZhikuError

log = logging.getLogger(__name__)

Event = dict[str, Any]
MAX_ROUNDS = 6
"""Rounds of tool calls before the agent gives up on a question (a model looping on its tools stops here)."""
MAX_CALLS_PER_ROUND = 8
"""Tool calls run from one model turn; further ones get an error the model can read."""


class AgentService:
    def __init__(self, *, registry: LlmRegistry, client: LlmClient, prompts: PromptTemplates, tools: ToolBox) -> None:
        self._registry = registry
        self._client = client
        self._prompts = prompts
        self._tools = tools

    async def chat(
        self, query: str, *, history: list[ChatMessage], options: ChatOptions, stream: bool
    ) -> AsyncIterator[Event]:
        endpoint = self._endpoint(options.model_name)
        prompt = self._prompts.render("agent_chat", options.prompt_name, input=query)
        messages: list[dict[str, Any]] = [*history, {"role": "user", "content": prompt}]
        specs = await run_in_threadpool(self._tools.specs)
        first = await self._client.complete_with_tools(endpoint, messages, options.params, specs)
        loop = _Loop(self._client, self._tools, endpoint, options.params, specs)
        events = loop.events(messages, first)
        return events if stream else _merged(events)

    def _endpoint(self, model_name: str | None) -> LlmEndpoint:
        endpoint = self._registry.resolve(model_name)
        if endpoint.engine == "transformers":
            raise ToolCallingUnsupported(
                f"model {endpoint.name!r} runs on our LLM worker, which does not support tool calling; for agent chat "
                "pick a model served by an OpenAI-compatible endpoint with function calling (engine: openai)"
            )
        return endpoint


class _Loop:
    def __init__(
        self, client: LlmClient, tools: ToolBox, endpoint: LlmEndpoint, params: ChatParams, specs: list[dict[str, Any]]
    ) -> None:
        self._client = client
        self._tools = tools
        self._endpoint = endpoint
        self._params = params
        self._specs = specs

    async def events(self, messages: list[dict[str, Any]], turn: AssistantTurn) -> AsyncGenerator[Event, None]:
        for _ in range(MAX_ROUNDS):
            if not turn.tool_calls:
                yield {"final_answer": turn.content}
                return
            if turn.content:
                yield {"answer": turn.content}
            messages.append(_assistant_message(turn))
            for index, call in enumerate(turn.tool_calls):
                output, event = await self._run(call, refused=index >= MAX_CALLS_PER_ROUND)
                yield event
                messages.append({"role": "tool", "tool_call_id": call.id, "content": output})
            try:
                turn = await self._client.complete_with_tools(self._endpoint, messages, self._params, self._specs)
            except ZhikuError as error:
                log.warning("agent stopped: %s", error.message)
                yield {"code": error.status_code, "msg": error.message}
                return
        yield {
            "final_answer": f"（已调用工具 {MAX_ROUNDS} 轮仍未得出答案 / no answer after {MAX_ROUNDS} rounds of tools）"
        }

    async def _run(self, call: ToolCall, *, refused: bool) -> tuple[str, Event]:
        """The tool's answer for the model, and the event that shows the call (a failure goes back to the model,
        which may try again)."""
        try:
            if refused:
                raise InvalidInput(f"at most {MAX_CALLS_PER_ROUND} tool calls per turn are run; ask again for this one")
            output = await run_in_threadpool(self._tools.run, call.name, call.arguments)
        except ZhikuError as error:
            lines = [f"工具 / tool: {call.name}", "状态 / status: 失败 failed", f"错误 / error: {error.message}"]
            return f"error: {error.message}", {"tools": ["\n```\n", *lines, "\n```\n"]}
        lines = [
            f"工具 / tool: {call.name}",
            "状态 / status: 成功 ok",
            f"输入 / input: {call.arguments}",
            f"输出 / output: {output}",
        ]
        return output, {"tools": ["\n```\n", *lines, "\n```\n"]}


def _assistant_message(turn: AssistantTurn) -> dict[str, Any]:
    calls = [
        {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
        for call in turn.tool_calls
    ]
    return {"role": "assistant", "content": turn.content or None, "tool_calls": calls}


async def _merged(events: AsyncGenerator[Event, None]) -> AsyncGenerator[Event, None]:
    """One event: the answers and tool calls as text in `answer`, and `final_answer` (an error wins)."""
    parts: list[str] = []
    final = ""
    try:
        async for event in events:
            if "code" in event:
                yield event
                return
            parts.append(event.get("answer", "") + "\n".join(event.get("tools", [])))
            final = event.get("final_answer", final)
    finally:
        await events.aclose()
    yield {"answer": "".join(parts), "final_answer": final}
