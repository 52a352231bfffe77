"""Other routes (Chatchat 0.2 paths): embedding texts with a configured model."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from server.api.deps import Configs, Embeddings
from server.api.envelope import Envelope
from server.api.fields import RequestBody
from server.api.schemas import Reply

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
