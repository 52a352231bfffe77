"""Server routes (Chatchat 0.2 paths): the defaults and choices a client offers, and prompt templates."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse
from pydantic import Field

from server.api.deps import Chat, Configs, Prompts
from server.api.envelope import Envelope
from server.api.fields import RequestBody
from server.api.schemas import Reply
from server.chat.web_search import HOW_TO_CONFIGURE
from server.server_configs import ServerConfigs

router = APIRouter(prefix="/server", tags=["Server"])


class PromptBody(RequestBody):
    type: str = Field("llm_chat", description="llm_chat, knowledge_base_chat, file_chat or empty")
    name: str = "default"


@router.post(
    "/configs",
    summary="Defaults and choices for clients: search modes, store types, file types, models (a plain JSON object)",
    response_model=ServerConfigs,
)
async def server_configs(configs: Configs) -> ServerConfigs:
    return configs


@router.post(
    "/get_prompt_template",
    summary="The text of one prompt template (text/plain, as Chatchat 0.2 clients read it)",
    response_class=PlainTextResponse,
    response_model=str,
)
async def get_prompt_template(prompts: Prompts, body: PromptBody | None = None) -> PlainTextResponse:
    body = body or PromptBody()
    return PlainTextResponse(prompts.get(body.type, body.name))


@router.post(
    "/list_search_engines",
    summary="Web search engines for /chat/search_engine_chat (data: names, the default first)",
    response_model=Reply[list[str]],
)
async def list_search_engines(chat: Chat) -> Envelope:
    names = chat.web.names()
    return Envelope(names, "success" if names else f"no search engine is configured: {HOW_TO_CONFIGURE}")
