"""Other routes (Chatchat 0.2 paths): embedding texts with a configured model, text completion."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from server.api.deps import Chat, Configs, Embeddings
from server.api.envelope import Envelope
from server.api.fields import MAX_QUERY_CHARS, MAX_TOKENS_LIMIT, RequestBody
from server.api.schemas import Reply
from server.api.sse import EventStream, text_stream
from server.chat.llm_client import DEFAULT_TEMPERATURE, ChatParams
from server.chat.service import ChatOptions

router = APIRouter(prefix="/other", tags=["Other"])


class EmbedBody(RequestBody):
    texts: list[str] = Field(min_length=1, max_length=2048)
    embed_model: str | None = Field(None, description="a key of embed_models (default kb.default_embed_model)")
    to_query: bool = Field(False, description="embed as search queries (some models add a query prefix)")


@router.post("/embed_texts", summary="Vectors of texts (data: [[float…]…])", response_model=Reply[list[list[float]]])
async def embed_texts(embeddings: Embeddings, configs: Configs, body: EmbedBody) -> Envelope:
    model = body.embed_model or configs.default_embed_model
    vectors = await run_in_threadpool(embeddings.embed_texts, model, body.texts, to_query=body.to_query)
    return Envelope(vectors)


class CompletionBody(RequestBody):
    model_config = ConfigDict(protected_namespaces=())

    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, examples=["恼羞成怒"])
    stream: bool = False
    echo: bool = Field(False, description="start the answer with the query itself")
    model_name: str | None = Field(None, description="a key of llm_models (default: default_llm)")
    temperature: float = Field(DEFAULT_TEMPERATURE, ge=0.0, le=2.0)
    max_tokens: int | None = Field(1024, le=MAX_TOKENS_LIMIT, description="null or <= 0: the model's max_new_tokens")
    prompt_name: str = Field("default", description="a `completion` template, see /server/get_prompt_template")

    def options(self) -> ChatOptions:
        tokens = self.max_tokens if self.max_tokens and self.max_tokens > 0 else None
        return ChatOptions(self.model_name, ChatParams(self.temperature, tokens), self.prompt_name or "default")


_TEXT_EVENTS = {
    "type": "array",
    "items": {"type": "string"},
    "description": "Server-Sent Events whose data is plain text (not JSON): the answer's pieces in order",
}


@router.post(
    "/completion",
    summary="Continue a text with an LLM (Server-Sent Events of plain text, as Chatchat 0.2)",
    response_class=EventStream,
    responses={200: {"content": {"text/event-stream": {"schema": _TEXT_EVENTS}}}},
)
async def completion(chat: Chat, body: CompletionBody) -> StreamingResponse:
    pieces = await chat.text_completion(body.query, body.options(), echo=body.echo)
    return text_stream(pieces, body.stream)
