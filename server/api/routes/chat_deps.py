"""What the chat routes share: the chat context dependency, request fields and Server-Sent Events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import Depends, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from server.api.envelope import Envelope
from server.api.routes.search import ScoreThreshold
from server.chat.context import ChatContext
from server.chat.llm_client import ChatParams
from server.chat.service import ChatOptions

MAX_QUERY_CHARS = 20000
MAX_TOKENS_LIMIT = 131072


def get_chat(request: Request) -> ChatContext:
    chat: ChatContext = request.app.state.chat
    return chat


Chat = Annotated[ChatContext, Depends(get_chat)]


class HistoryMessage(BaseModel):
    role: Literal["user", "assistant", "system"]
    content: str


class ModelFields(BaseModel):
    """Fields every chat route shares (Chatchat 0.2 names and defaults)."""

    model_config = ConfigDict(protected_namespaces=())

    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, examples=["你好"])
    history: list[HistoryMessage] = Field(default_factory=list, description='[{"role": "user", "content": "…"}]')
    stream: bool = False
    model_name: str | None = Field(None, description="a key of llm_models (default: default_llm)")
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    max_tokens: int | None = Field(
        None, ge=0, le=MAX_TOKENS_LIMIT, description="longest answer in tokens; null or 0: the model's max_new_tokens"
    )
    prompt_name: str = Field("default", description="a template name, see /server/get_prompt_template")

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("query is empty; send a question")
        return value

    def options(self) -> ChatOptions:
        params = ChatParams(temperature=self.temperature, max_tokens=self.max_tokens or None)
        return ChatOptions(self.model_name or None, params, self.prompt_name or "default")

    def history_messages(self) -> list[dict[str, str]]:
        return [message.model_dump() for message in self.history]


class SearchFields(BaseModel):
    top_k: int | None = Field(None, ge=1, le=100, description="chunks to retrieve (default kb.top_k)")
    score_threshold: ScoreThreshold = Field(
        None, description="keep chunks with similarity >= this, within [0, 1] (default kb.score_threshold)"
    )


def event_line(event: Any) -> str:
    # ensure_ascii=False: Chinese goes out as UTF-8, not \\u escapes.
    return f"data: {json.dumps(event, ensure_ascii=False)}\r\n\r\n"


def sse(events: AsyncIterator[dict[str, Any]]) -> StreamingResponse:
    async def body() -> AsyncIterator[str]:
        async for event in events:
            yield event_line(event)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(body(), media_type="text/event-stream; charset=utf-8", headers=headers)


async def respond(events: AsyncIterator[dict[str, Any]], stream: bool) -> Response:
    """Streamed events, or (stream=false) the single merged event — an error in it becomes a real HTTP status."""
    if stream:
        return sse(events)
    event = await anext(aiter(events))
    if "code" in event:
        return Envelope(None, str(event.get("msg", "")), int(event["code"]))

    async def one() -> AsyncIterator[dict[str, Any]]:
        yield event

    return sse(one())
