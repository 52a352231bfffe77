"""Other routes (Chatchat 0.2 paths): embedding texts with a configured model."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from server.api.deps import Ctx
from server.api.envelope import Envelope
from server.knowledge_base.context import KbContext

router = APIRouter(prefix="/other", tags=["Other"])


class EmbedBody(BaseModel):
    texts: list[str] = Field(min_length=1, max_length=2048)
    embed_model: str | None = Field(None, description="a key of embed_models (default kb.default_embed_model)")
    to_query: bool = Field(False, description="embed as search queries (some models add a query prefix)")


def embed_texts_with(ctx: KbContext, texts: list[str], model: str, to_query: bool) -> list[list[float]]:
    if to_query:
        return [ctx.embeddings.embed_query(model, text).reshape(-1).tolist() for text in texts]
    return [row.tolist() for row in ctx.embeddings.embed_documents(model, texts)]


@router.post("/embed_texts", summary="Vectors of texts (data: [[float…]…])")
async def embed_texts(ctx: Ctx, body: EmbedBody) -> Envelope:
    model = body.embed_model or ctx.default_embed_model
    vectors = await run_in_threadpool(embed_texts_with, ctx, body.texts, model, body.to_query)
    return Envelope(vectors)
