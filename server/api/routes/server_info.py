"""Server routes (Chatchat 0.2 paths): defaults for the UI and prompt templates."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from server.api.routes.chat_deps import Chat

router = APIRouter(prefix="/server", tags=["Server"])


class PromptBody(BaseModel):
    type: str = Field("llm_chat", description="llm_chat, knowledge_base_chat, file_chat or empty")
    name: str = "default"


@router.post("/configs", summary="Defaults the UI needs (a plain JSON object, as in Chatchat 0.2)")
async def server_configs(chat: Chat) -> dict[str, Any]:
    prompts = {kind: chat.prompts.names(kind) for kind in chat.prompts.types()}
    return {**chat.ui_defaults, "prompt_templates": prompts}


@router.post(
    "/get_prompt_template",
    summary="The text of one prompt template (text/plain, as Chatchat 0.2 clients read it)",
    response_class=PlainTextResponse,
)
async def get_prompt_template(chat: Chat, body: PromptBody | None = None) -> PlainTextResponse:
    body = body or PromptBody()
    return PlainTextResponse(chat.prompts.get(body.type, body.name))
