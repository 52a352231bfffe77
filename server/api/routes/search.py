"""Searching a knowledge base."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import AfterValidator, BaseModel, Field, field_validator

from server.api.deps import KbService

router = APIRouter(prefix="/knowledge_base", tags=["Knowledge Base Management"])


def _similarity(value: float | None) -> float | None:
    if value is not None and not 0.0 <= value <= 1.0:
        raise ValueError(
            "score_threshold is a similarity within [0, 1] (higher = closer); Chatchat 0.2 used distances "
            "up to 2 — use e.g. 0.5 instead"
        )
    return value


ScoreThreshold = Annotated[float | None, AfterValidator(_similarity)]
"""A score threshold field: a similarity in [0, 1], refused with a message that explains the change from 0.2."""

SearchMode = Literal["dense", "keyword", "hybrid"]
SEARCH_MODE_HELP = "dense, keyword (BM25) or hybrid (rank fusion of both); default: the KB's own, else kb.search_mode"
KB_NAMES_HELP = "a knowledge base name, or a list of names whose results are fused (each chunk's metadata.kb)"


class SearchDocs(BaseModel):
    query: str = Field("", max_length=10000, examples=["如何上传文件"])
    knowledge_base_name: str | list[str] = Field(examples=["samples"], description=KB_NAMES_HELP)
    top_k: int | None = Field(None, description="how many chunks (default kb.top_k)")
    score_threshold: ScoreThreshold = Field(
        None, description="keep chunks whose similarity score is >= this, within [0, 1] (default kb.score_threshold)"
    )
    file_name: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)
    search_mode: SearchMode | None = Field(None, description=SEARCH_MODE_HELP)
    fetch_k: int | None = Field(
        None, ge=1, le=1000, description="candidates per list for hybrid fusion / reranking; default max(4*top_k, 20)"
    )

    @field_validator("top_k")
    @classmethod
    def _positive(cls, value: int | None) -> int | None:
        if value is not None and value <= 0:
            raise ValueError("top_k must be at least 1")
        return value


class DocumentOut(BaseModel):
    id: str
    page_content: str
    metadata: dict[str, Any]
    type: str = "Document"
    score: float | None = Field(
        description="in [0, 1], higher is better (cosine, mapped BM25 or rank fusion: see docs/retrieval.md); "
        "null when listing a file"
    )


@router.post("/search_docs", summary="Search a knowledge base (a bare list of chunks, best first)")
def search_docs(kbs: KbService, body: SearchDocs) -> list[DocumentOut]:
    top_k, threshold = kbs.ctx.defaults.search_limits(body.top_k, body.score_threshold)
    results = kbs.search(
        body.knowledge_base_name,
        body.query,
        top_k=top_k,
        score_threshold=threshold,
        file_name=body.file_name,
        metadata=body.metadata,
        search_mode=body.search_mode,
        fetch_k=body.fetch_k,
    )
    return [DocumentOut(id=r.id, page_content=r.page_content, metadata=r.metadata, score=r.score) for r in results]
