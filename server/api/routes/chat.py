"""Chat routes (Chatchat 0.2 paths and fields): LLM chat, knowledge-base chat, file chat, feedback.

Answers are Server-Sent Events, `data: {json}\\r\\n\\r\\n`; with stream=false exactly one event. Anything that
fails before the answer starts (unknown model or KB, bad input, model endpoint down) is a plain JSON envelope
with the matching HTTP status, never an event stream.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from server.api.deps import KbService
from server.api.envelope import Envelope
from server.api.routes.chat_deps import Chat, ModelFields, SearchFields, respond
from server.api.routes.search import KB_NAMES_HELP, SEARCH_MODE_HELP, SearchMode
from server.chat.retrieval import kb_retriever
from server.knowledge_base.service import SearchResult

router = APIRouter(prefix="/chat", tags=["Chat"])


class ChatBody(ModelFields):
    conversation_id: str = Field("", max_length=32, description="a conversation to continue (created if new)")
    history_len: int = Field(-1, ge=-1, description="earlier turns of the conversation to send; -1: all")


class KbChatBody(ModelFields, SearchFields):
    knowledge_base_name: str | list[str] = Field(examples=["samples"], description=KB_NAMES_HELP)
    search_mode: SearchMode | None = Field(None, description=SEARCH_MODE_HELP)


class FileChatBody(ModelFields, SearchFields):
    knowledge_id: str = Field(min_length=1, max_length=64, description="the id from upload_temp_docs")


class FeedbackBody(BaseModel):
    message_id: str = Field(min_length=1, max_length=32)
    score: int = Field(ge=0, le=100, description="0 (bad) … 100 (good)")
    reason: str = Field("", max_length=2000)


@router.post("/chat", summary="Chat with an LLM; the conversation is saved (events: text, message_id)")
async def chat(chat: Chat, body: ChatBody) -> Response:
    events = await chat.service.llm_chat(
        body.query,
        conversation_id=body.conversation_id,
        history_len=body.history_len,
        history=body.history_messages(),
        options=body.options(),
        stream=body.stream,
    )
    return await respond(events, body.stream)


@router.post("/knowledge_base_chat", summary="Answer from a knowledge base (events: answer…, then docs)")
async def knowledge_base_chat(chat: Chat, kbs: KbService, body: KbChatBody) -> Response:
    top_k, threshold = kbs.ctx.defaults.search_limits(body.top_k, body.score_threshold)
    retrieve = kb_retriever(
        kbs,
        body.knowledge_base_name,
        body.query,
        top_k=top_k,
        score_threshold=threshold,
        search_mode=body.search_mode,
    )
    events = await chat.service.kb_chat(
        body.query,
        kind="knowledge_base_chat",
        retrieve=retrieve,
        link_kb=body.knowledge_base_name if isinstance(body.knowledge_base_name, str) else None,
        history=body.history_messages(),
        options=body.options(),
        stream=body.stream,
    )
    return await respond(events, body.stream)


@router.post("/file_chat", summary="Answer from files uploaded with upload_temp_docs (events: answer…, then docs)")
async def file_chat(chat: Chat, kbs: KbService, body: FileChatBody) -> Response:
    top_k, threshold = kbs.ctx.defaults.search_limits(body.top_k, body.score_threshold)

    def retrieve() -> list[SearchResult]:
        return chat.temp.search(body.knowledge_id, body.query, top_k=top_k, score_threshold=threshold)

    events = await chat.service.kb_chat(
        body.query,
        kind="file_chat",
        retrieve=retrieve,
        link_kb=None,
        history=body.history_messages(),
        options=body.options(),
        stream=body.stream,
    )
    return await respond(events, body.stream)


@router.post("/feedback", summary="Rate an answer of /chat/chat (score 0-100)")
async def feedback(chat: Chat, body: FeedbackBody) -> Envelope:
    await run_in_threadpool(chat.conversations.feedback, body.message_id, body.score, body.reason)
    return Envelope(None, f"feedback saved for message {body.message_id}")
