"""KB summaries (Chatchat 0.2's kb_summary_api): summarise files with an LLM into the KB's summary index, or a
list of chunks; search the summaries. Without a model: 503 before any work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import ConfigDict, Field

from server.api.deps import Summaries
from server.api.envelope import Envelope
from server.api.fields import MAX_TOKENS_LIMIT, RequestBody
from server.api.schemas import DocumentOut, RebuildEventOut, Reply, SummarizeOut
from server.api.sse import EventStream, event_schema, sse
from server.chat.llm_client import DEFAULT_TEMPERATURE, ChatParams
from server.chat.summaries import SummaryRequest

router = APIRouter(prefix="/knowledge_base/kb_summary_api", tags=["Knowledge Base Summaries"])


class SummaryFields(RequestBody):
    model_config = ConfigDict(protected_namespaces=())

    knowledge_base_name: str = Field(examples=["samples"])
    vs_type: str | None = Field(None, description="accepted for Chatchat clients; the KB's own store is used")
    embed_model: str | None = Field(None, description="accepted for Chatchat clients; the KB's own model is used")
    file_description: str = Field("", max_length=2000, description="told to the model with every part")
    model_name: str | None = Field(None, description="a key of llm_models (default: default_llm)")
    temperature: float = Field(DEFAULT_TEMPERATURE, ge=0.0, le=2.0)
    max_tokens: int | None = Field(None, ge=0, le=MAX_TOKENS_LIMIT, description="per call; null or 0: the model's")

    def request(self) -> SummaryRequest:
        params = ChatParams(self.temperature, self.max_tokens or None)
        return SummaryRequest(self.model_name, params, self.file_description)


class FileSummaryBody(SummaryFields):
    file_name: str = Field(min_length=1, examples=["test.pdf"])
    allow_empty_kb: bool = Field(True, description="accepted for Chatchat clients; the KB must exist")


class DocIdsSummaryBody(SummaryFields):
    doc_ids: list[str] = Field(default_factory=list, max_length=10_000, examples=[["chunk id"]])


class RecreateSummaryBody(SummaryFields):
    allow_empty_kb: bool = Field(True, description="accepted for Chatchat clients; the KB must exist")


class SearchSummariesBody(RequestBody):
    query: str = Field(min_length=1, max_length=10000, examples=["这份文档讲了什么"])
    knowledge_base_name: str
    top_k: int = Field(3, ge=1, le=100)


@router.post(
    "/summary_file_to_vector_store",
    summary="Summarise one file into the KB's summary index (one event)",
    response_class=EventStream,
    responses=event_schema(RebuildEventOut),
)
async def summary_file_to_vector_store(summaries: Summaries, body: FileSummaryBody) -> Response:
    done = await summaries.summarize_file(body.knowledge_base_name, body.file_name, body.request())

    async def event() -> AsyncIterator[dict[str, Any]]:
        yield {"code": 200, "msg": f"{done.file_name} summarised", "doc": done.file_name, "summary": done.summary}

    return sse(event())


@router.post(
    "/summary_doc_ids_to_vector_store",
    summary="Summarise the given chunks (the summary is answered, not stored)",
    response_model=Reply[SummarizeOut],
)
async def summary_doc_ids_to_vector_store(summaries: Summaries, body: DocIdsSummaryBody) -> Envelope:
    text = await summaries.summarize_chunks(body.knowledge_base_name, body.doc_ids, body.request())
    document = {"page_content": text, "metadata": {"file_description": body.file_description}, "id": ""}
    return Envelope({"summarize": [document]}, "summarised")


@router.post(
    "/recreate_summary_vector_store",
    summary="Summarise every file of the KB again (events per file)",
    response_class=EventStream,
    responses=event_schema(RebuildEventOut),
)
async def recreate_summary_vector_store(summaries: Summaries, body: RecreateSummaryBody) -> Response:
    return sse(await summaries.recreate(body.knowledge_base_name, body.request()))


@router.post(
    "/search_summaries",
    summary="The file summaries closest to a question (a bare list, best first)",
    response_model=list[DocumentOut],
)
def search_summaries(summaries: Summaries, body: SearchSummariesBody) -> list[DocumentOut]:
    found = summaries.search(body.knowledge_base_name, body.query, body.top_k)
    return [DocumentOut(id=r.id, page_content=r.page_content, metadata=r.metadata, score=r.score) for r in found]
