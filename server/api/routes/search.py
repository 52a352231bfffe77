"""Searching knowledge bases."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field, field_validator

from server.api.deps import Search
from server.api.fields import KB_NAMES_HELP, RequestBody, ScoreThreshold
from server.api.filters import FILTER_HELP, SearchFilter, file_filter
from server.api.schemas import DocumentOut
from server.knowledge_base.search import SearchQuery
from server.retrieval.modes import SEARCH_MODE_HELP, SearchMode

router = APIRouter(prefix="/knowledge_base", tags=["Knowledge Base Management"])


class SearchDocs(RequestBody):
    query: str = Field("", max_length=10000, examples=["如何上传文件"])
    knowledge_base_name: str | list[str] = Field(examples=["samples"], description=KB_NAMES_HELP)
    top_k: int | None = Field(None, le=1000, description="how many chunks (default kb.top_k)")
    score_threshold: ScoreThreshold = Field(
        None, description="keep chunks whose similarity score is >= this, within [0, 1] (default kb.score_threshold)"
    )
    file_name: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)
    search_mode: SearchMode | None = Field(None, description=SEARCH_MODE_HELP)
    fetch_k: int | None = Field(
        None, ge=1, le=1000, description="candidates per list for hybrid fusion / reranking; default max(4*top_k, 20)"
    )
    filter: SearchFilter | None = Field(None, description=FILTER_HELP)

    @field_validator("top_k")
    @classmethod
    def _positive(cls, value: int | None) -> int | None:
        if value is not None and value <= 0:
            raise ValueError("top_k must be at least 1")
        return value

    def search_query(self) -> SearchQuery:
        return SearchQuery(
            self.query,
            self.top_k,
            self.score_threshold,
            self.file_name,
            self.metadata,
            self.search_mode,
            self.fetch_k,
            file_filter(self.filter),
        )


@router.post(
    "/search_docs",
    summary="Search a knowledge base (a bare list of chunks, best first)",
    response_model=list[DocumentOut],
)
def search_docs(search: Search, body: SearchDocs) -> list[DocumentOut]:
    results = search.search(body.knowledge_base_name, body.search_query())
    return [DocumentOut(id=r.id, page_content=r.page_content, metadata=r.metadata, score=r.score) for r in results]
