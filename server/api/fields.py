"""Request fields several routes share (Chatchat 0.2 names and defaults)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from server.chat.llm_client import DEFAULT_TEMPERATURE, ChatParams
from server.chat.service import ChatOptions
from server.knowledge_base.params import Chunking
from server.ocr import OcrMode

MAX_QUERY_CHARS = 20000
MAX_TOKENS_LIMIT = 131072
OCR_HELP = "auto: OCR images and PDF pages without text; always: every page; never: no OCR (default: the KB's mode)"
KbOcrMode = Literal["", "auto", "always", "never"]
KB_NAMES_HELP = "a knowledge base name, or a list of names whose results are fused (each chunk's metadata.kb)"


CHATCHAT_NO_FILTER = 1.0
"""Chatchat 0.2's shipped SCORE_THRESHOLD and its UI slider's default: on its L2 scale, "keep everything"."""


class RequestBody(BaseModel):
    """A JSON request body. An explicit `null` for a field that has a default means that default, as it did for
    Chatchat 0.2 (pydantic 1), whose client sends e.g. `"conversation_id": null`; null for a required field is
    still refused."""

    @model_validator(mode="before")
    @classmethod
    def _null_is_default(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        defaulted = {field.alias or name for name, field in cls.model_fields.items() if not field.is_required()}
        return {key: value for key, value in data.items() if value is not None or key not in defaulted}


def _similarity(value: float | None) -> float | None:
    if value == CHATCHAT_NO_FILTER:
        return 0.0  # "similarity >= 1" would keep only exact copies of the query: read as Chatchat's "no filter"
    if value is not None and not 0.0 <= value <= 1.0:
        raise ValueError(
            "score_threshold is a similarity within [0, 1] (higher = closer); Chatchat 0.2 used distances "
            "up to 2 — use e.g. 0.5 instead"
        )
    return value


ScoreThreshold = Annotated[float | None, AfterValidator(_similarity)]
"""A score threshold field: a similarity in [0, 1], refused with a message that explains the change from 0.2; 1.0
(Chatchat's default) means no filtering."""


class ChunkingFields(RequestBody):
    chunk_size: int | None = None
    chunk_overlap: int | None = None
    zh_title_enhance: bool | None = None
    ocr: OcrMode | None = Field(None, description=OCR_HELP)

    def chunking(self) -> Chunking:
        return Chunking(self.chunk_size, self.chunk_overlap, self.zh_title_enhance, self.ocr)


class HistoryMessage(BaseModel):
    role: Literal["user", "assistant", "system"]
    content: str


class ModelFields(RequestBody):
    """Fields every chat route shares."""

    model_config = ConfigDict(protected_namespaces=())

    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, examples=["你好"])
    history: list[HistoryMessage] = Field(default_factory=list, description='[{"role": "user", "content": "…"}]')
    stream: bool = False
    model_name: str | None = Field(None, description="a key of llm_models (default: default_llm)")
    temperature: float = Field(DEFAULT_TEMPERATURE, ge=0.0, le=2.0)
    max_tokens: int | None = Field(
        None, ge=0, le=MAX_TOKENS_LIMIT, description="longest answer in tokens; null or 0: the model's max_new_tokens"
    )
    prompt_name: str = Field("default", description="a template name, see /server/get_prompt_template")

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("query is empty; send a question")
        return value

    def options(self) -> ChatOptions:
        params = ChatParams(temperature=self.temperature, max_tokens=self.max_tokens or None)
        return ChatOptions(self.model_name or None, params, self.prompt_name or "default")

    def history_messages(self) -> list[dict[str, str]]:
        return [message.model_dump() for message in self.history]


class SearchFields(RequestBody):
    top_k: int | None = Field(None, ge=1, le=100, description="chunks to retrieve (default kb.top_k)")
    score_threshold: ScoreThreshold = Field(
        None, description="keep chunks with similarity >= this, within [0, 1] (default kb.score_threshold)"
    )
