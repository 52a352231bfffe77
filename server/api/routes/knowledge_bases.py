"""Knowledge-base routes (Chatchat 0.2 paths and fields)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from pydantic import Field

from server.api.access import Caller
from server.api.deps import Jobs, KnowledgeBases
from server.api.envelope import Envelope
from server.api.fields import KbOcrMode, RequestBody
from server.api.schemas import KbInfoOut, KbSummary, OcrModeOut, Reply, SearchModeOut
from server.errors import InvalidInput
from server.retrieval.modes import KbSearchMode
from server.vectorstores.registry import STORES

router = APIRouter(prefix="/knowledge_base", tags=["Knowledge Base Management"])

KbName = Annotated[str, Body(description="knowledge base name (Unicode allowed, at most 64 characters)")]


class CreateKb(RequestBody):
    knowledge_base_name: str = Field(examples=["samples"])
    vector_store_type: str | None = Field(
        None, description=f"one of {', '.join(STORES.kb_types())} (default kb.default_vs_type)"
    )
    embed_model: str | None = Field(None, description="a key of embed_models in the settings")
    kb_info: str = ""
    search_mode: KbSearchMode = Field(
        "", description='the KB\'s default search mode; "" follows kb.search_mode in the settings'
    )
    ocr_mode: KbOcrMode = Field("", description="how the KB's files are OCR'd; \"\" follows ocr.mode in the settings")


@router.get("/list_knowledge_bases", summary="List knowledge base names", response_model=Reply[list[str]])
def list_knowledge_bases(kbs: KnowledgeBases, caller: Caller) -> Envelope:
    return Envelope([name for name in kbs.list_names() if caller.sees(name)])


@router.get(
    "/list_knowledge_base_details",
    summary="Knowledge bases with store, model and file count",
    response_model=Reply[list[KbSummary]],
)
def list_knowledge_base_details(kbs: KnowledgeBases, caller: Caller) -> Envelope:
    return Envelope([kb for kb in kbs.list_details() if caller.sees(kb.name)])


@router.post("/create_knowledge_base", summary="Create a knowledge base", response_model=Reply[KbSummary])
def create_knowledge_base(kbs: KnowledgeBases, body: CreateKb) -> Envelope:
    summary = kbs.create(
        body.knowledge_base_name,
        vs_type=body.vector_store_type,
        embed_model=body.embed_model,
        info=body.kb_info,
        search_mode=body.search_mode,
        ocr_mode=body.ocr_mode,
    )
    return Envelope(summary, f"created knowledge base {summary.name}")


def _kb_name_from(body: Any) -> str:
    if isinstance(body, str):
        return body
    if isinstance(body, dict) and isinstance(body.get("knowledge_base_name"), str):
        return str(body["knowledge_base_name"])
    raise InvalidInput('send the knowledge base name as a JSON string ("kb") or {"knowledge_base_name": "kb"}')


@router.post(
    "/delete_knowledge_base", summary="Delete a knowledge base, its files and vectors", response_model=Reply[None]
)
def delete_knowledge_base(
    kbs: KnowledgeBases,
    jobs: Jobs,
    body: Annotated[str | dict[str, Any], Body(examples=["samples"])],
) -> Envelope:
    name = _kb_name_from(body)
    jobs.cancel_kb(name)  # its files in work stop at their next stage instead of failing on a KB that is gone
    kbs.delete(name)
    return Envelope(None, f"deleted knowledge base {name}")


@router.post("/update_info", summary="Change a knowledge base's description", response_model=Reply[KbInfoOut])
def update_info(
    kbs: KnowledgeBases, knowledge_base_name: KbName, kb_info: Annotated[str, Body(max_length=2000)]
) -> Envelope:
    return Envelope({"kb_info": kbs.update_info(knowledge_base_name, kb_info)}, "updated")


@router.post(
    "/update_search_mode", summary="Change a knowledge base's default search mode", response_model=Reply[SearchModeOut]
)
def update_search_mode(
    kbs: KnowledgeBases,
    knowledge_base_name: KbName,
    search_mode: Annotated[KbSearchMode, Body(description='"" = kb.search_mode')],
) -> Envelope:
    return Envelope({"search_mode": kbs.set_search_mode(knowledge_base_name, search_mode)}, "updated")


@router.post(
    "/update_ocr_mode", summary="Change how a knowledge base's files are OCR'd", response_model=Reply[OcrModeOut]
)
def update_ocr_mode(
    kbs: KnowledgeBases,
    knowledge_base_name: KbName,
    ocr_mode: Annotated[KbOcrMode, Body(description='auto, always, never; "" = ocr.mode')],
) -> Envelope:
    return Envelope({"ocr_mode": kbs.set_ocr_mode(knowledge_base_name, ocr_mode)}, "updated")


@router.get(
    "/knowledge_base_info", summary="One knowledge base's settings and file count", response_model=Reply[KbSummary]
)
def knowledge_base_info(kbs: KnowledgeBases, knowledge_base_name: Annotated[str, Query()]) -> Envelope:
    return Envelope(kbs.describe(knowledge_base_name))
