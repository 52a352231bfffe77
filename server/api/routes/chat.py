"""Chat routes (Chatchat 0.2 paths and fields): LLM chat, knowledge-base chat, file chat, search-engine chat,
agent chat, feedback.

Answers are Server-Sent Events, `data: {json}\\r\\n\\r\\n`; with stream=false exactly one event. Anything that
fails before the answer starts (unknown model or KB, bad input, model endpoint down) is a plain JSON envelope
with the matching HTTP status, never an event stream.
"""

from __future__ import annotations

from dataclasses import replace

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import Field

from server.api.deps import Agent, Chat
from server.api.envelope import Envelope
from server.api.fields import KB_NAMES_HELP, ModelFields, RequestBody, SearchFields
from server.api.filters import FILTER_HELP, SearchFilter, file_filter
from server.api.schemas import AgentEventOut, AnswerEventOut, ChatEventOut, Reply
from server.api.sse import EventStream, event_schema, respond
from server.knowledge_base.search import SearchQuery
from server.retrieval.modes import SEARCH_MODE_HELP, SearchMode

router = APIRouter(prefix="/chat", tags=["Chat"])


class ChatBody(ModelFields):
    conversation_id: str = Field("", max_length=32, description="a conversation to continue (created if new)")
    history_len: int = Field(-1, ge=-1, le=10_000, description="earlier turns of the conversation to send; -1: all")


class KbChatBody(ModelFields, SearchFields):
    knowledge_base_name: str | list[str] = Field(examples=["samples"], description=KB_NAMES_HELP)
    search_mode: SearchMode | None = Field(None, description=SEARCH_MODE_HELP)
    filter: SearchFilter | None = Field(None, description=FILTER_HELP)
    with_summaries: bool = Field(
        False, description="also answer from the closest file summary (kb_summary_api): for whole-document questions"
    )
    rewrite_query: bool | None = Field(
        None,
        description="with a history and a chat model, search the follow-up rewritten as a standalone question "
        "(shown as rewritten_query with the docs); null: kb.rewrite_followups",
    )


class FileChatBody(ModelFields, SearchFields):
    knowledge_id: str = Field(min_length=1, max_length=64, description="the id from upload_temp_docs")


class SearchEngineChatBody(ModelFields):
    search_engine_name: str = Field(min_length=1, examples=["searxng"], description="see /server/list_search_engines")
    top_k: int | None = Field(None, ge=1, le=50, description="search results to answer from (default web_search.top_k)")
    split_result: bool = Field(
        False, description="accepted for Chatchat clients; results are short snippets, so they are never split"
    )


class FeedbackBody(RequestBody):
    message_id: str = Field(min_length=1, max_length=32)
    score: int = Field(ge=0, le=100, description="0 (bad) … 100 (good)")
    reason: str = Field("", max_length=2000)


@router.post(
    "/chat",
    summary="Chat with an LLM; the conversation is saved (events: text, message_id)",
    response_class=EventStream,
    responses=event_schema(ChatEventOut),
)
async def chat(chat: Chat, body: ChatBody) -> Response:
    events = await chat.llm_chat(
        body.query,
        conversation_id=body.conversation_id,
        history_len=body.history_len,
        history=body.history_messages(),
        options=body.options(),
        stream=body.stream,
    )
    return await respond(events, body.stream)


@router.post(
    "/knowledge_base_chat",
    summary="Answer from a knowledge base (events: answer…, then docs)",
    response_class=EventStream,
    responses=event_schema(AnswerEventOut),
)
async def knowledge_base_chat(chat: Chat, body: KbChatBody, request: Request) -> Response:
    search = SearchQuery(
        body.query, body.top_k, body.score_threshold, search_mode=body.search_mode, filter=file_filter(body.filter)
    )
    events = await chat.knowledge_base_chat(
        body.query,
        body.knowledge_base_name,
        search,
        history=body.history_messages(),
        options=replace(body.options(), rewrite=body.rewrite_query),
        stream=body.stream,
        base_url=str(request.base_url),
        with_summaries=body.with_summaries,
    )
    return await respond(events, body.stream)


@router.post(
    "/file_chat",
    summary="Answer from files uploaded with upload_temp_docs (events: answer…, then docs)",
    response_class=EventStream,
    responses=event_schema(AnswerEventOut),
)
async def file_chat(chat: Chat, body: FileChatBody) -> Response:
    search = SearchQuery(body.query, body.top_k, body.score_threshold)
    events = await chat.file_chat(
        body.query,
        body.knowledge_id,
        search,
        history=body.history_messages(),
        options=body.options(),
        stream=body.stream,
    )
    return await respond(events, body.stream)


@router.post(
    "/search_engine_chat",
    summary="Answer from web search results (events: answer…, then docs linking the pages)",
    response_class=EventStream,
    responses=event_schema(AnswerEventOut),
)
async def search_engine_chat(chat: Chat, body: SearchEngineChatBody) -> Response:
    events = await chat.search_engine_chat(
        body.query,
        body.search_engine_name,
        body.top_k,
        history=body.history_messages(),
        options=body.options(),
        stream=body.stream,
    )
    return await respond(events, body.stream)


@router.post(
    "/agent_chat",
    summary="Chat with an agent that calls tools: KB search, calculator, date (events: answer, tools, final_answer)",
    response_class=EventStream,
    responses=event_schema(AgentEventOut),
)
async def agent_chat(agent: Agent, body: ModelFields) -> Response:
    events = await agent.chat(body.query, history=body.history_messages(), options=body.options(), stream=body.stream)
    return await respond(events, body.stream)


@router.post("/feedback", summary="Rate an answer of /chat/chat (score 0-100)", response_model=Reply[None])
async def feedback(chat: Chat, body: FeedbackBody) -> Envelope:
    await chat.feedback(body.message_id, body.score, body.reason)
    return Envelope(None, f"feedback saved for message {body.message_id}")
