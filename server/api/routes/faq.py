"""FAQ knowledge bases: import question–answer pairs, list and edit them, and set when KB chat answers with them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from server.api.deps import Faq, KnowledgeBases
from server.api.envelope import Envelope
from server.api.fields import RequestBody
from server.api.schemas import Reply
from server.knowledge_base.faq import FaqFile
from server.loaders.faq import FAQ_FORMATS, FaqEntry

router = APIRouter(prefix="/knowledge_base", tags=["FAQ"])

_FORMATS = ", ".join(FAQ_FORMATS)


class FaqEntryIn(BaseModel):
    id: str = Field("", max_length=64, description='"" for a new entry: it gets the next free number')
    questions: list[str] = Field(min_length=1, description="the question and other phrasings of it")
    answer: str = Field(min_length=1)


class FaqEntryOut(BaseModel):
    id: str
    questions: list[str]
    answer: str


class FaqFileOut(BaseModel):
    file_name: str
    question_count: int
    entries: list[FaqEntryOut]


class DirectAnswerOut(BaseModel):
    direct_answer_threshold: float | None = Field(description="None: follows kb.direct_answer_threshold")


def _out(faq: FaqFile) -> FaqFileOut:
    entries = [FaqEntryOut(id=e.id, questions=list(e.questions), answer=e.answer) for e in faq.entries]
    return FaqFileOut(file_name=faq.file_name, question_count=faq.question_count, entries=entries)


@router.post(
    "/import_faq",
    summary=f"Import question–answer pairs ({_FORMATS}) as a FAQ file of the knowledge base",
    response_model=Reply[FaqFileOut],
    status_code=201,
)
async def import_faq(
    faq: Faq,
    knowledge_base_name: Annotated[str, Form()],
    file: Annotated[UploadFile, File(description="columns or keys: question, similar questions, answer, id")],
    file_name: Annotated[str, Form(description='stored as this .faq.jsonl; "": the upload\'s name')] = "",
    override: Annotated[bool, Form(description="replace a FAQ of the same name")] = False,
) -> Envelope:
    name = file.filename or ""
    stored = await run_in_threadpool(
        faq.import_file, knowledge_base_name, name, file.file, file_name=file_name, replace=override
    )
    message = f"imported {len(stored.entries)} entries ({stored.question_count} questions) as {stored.file_name}"
    return Envelope(_out(stored), message, 201)


@router.get(
    "/list_faq", summary="The FAQ files of a knowledge base and their entries", response_model=Reply[list[FaqFileOut]]
)
def list_faq(
    faq: Faq,
    knowledge_base_name: Annotated[str, Query()],
    file_name: Annotated[str, Query(description='one FAQ file; "": all')] = "",
) -> Envelope:
    return Envelope([_out(one) for one in faq.list(knowledge_base_name, file_name)])


class UpdateFaq(RequestBody):
    knowledge_base_name: str
    file_name: str = Field(min_length=1, description="a FAQ file of the KB (see list_faq)")
    entries: list[FaqEntryIn] = Field(min_length=1, description="all of the file's entries, as they are to be")


@router.post("/update_faq", summary="Replace the entries of a FAQ file", response_model=Reply[FaqFileOut])
def update_faq(faq: Faq, body: UpdateFaq) -> Envelope:
    entries = [
        FaqEntry(entry.id.strip(), tuple(q.strip() for q in entry.questions), entry.answer) for entry in body.entries
    ]
    stored = faq.update(body.knowledge_base_name, body.file_name, entries)
    return Envelope(_out(stored), f"{stored.file_name} has {len(stored.entries)} entries")


class UpdateDirectAnswer(RequestBody):
    knowledge_base_name: str
    direct_answer_threshold: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="answer with a FAQ's stored answer above this score; 1: never; null: the setting",
    )


@router.post(
    "/update_direct_answer_threshold",
    summary="Set the score above which KB chat answers with a FAQ's stored answer",
    response_model=Reply[DirectAnswerOut],
)
def update_direct_answer_threshold(kbs: KnowledgeBases, body: UpdateDirectAnswer) -> Envelope:
    value = kbs.set_direct_answer_threshold(body.knowledge_base_name, body.direct_answer_threshold)
    return Envelope(DirectAnswerOut(direct_answer_threshold=value), "updated")
