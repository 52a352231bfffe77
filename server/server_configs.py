"""What /server/configs answers: the defaults and the choices a client offers, built once from the settings.

The Web UI builds its forms from this model alone, so every list here (search modes, store types, file types,
models) has one source: the registries and the settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from server.retrieval.modes import SearchMode
from server.splitter import SPLITTER_NAME

if TYPE_CHECKING:
    from configs import Settings

UI_HISTORY_LEN = 3
"""Earlier turns the Web UI sends with a question unless the user picks another number."""


class FileTypeInfo(BaseModel):
    extension: str = Field(examples=[".docx"])
    loader: str = Field(examples=["DocxLoader"], description="the loader that reads it, shown in list_file_details")


class ChatchatKeys(BaseModel):
    """The same defaults under the names Langchain-Chatchat 0.2's /server/configs used, for its clients and UI.

    SCORE_THRESHOLD is our similarity in [0, 1] (0: no filtering), not Chatchat's L2 distance; see
    docs/chatchat-compat.md."""

    DEFAULT_KNOWLEDGE_BASE: str = "samples"
    DEFAULT_VS_TYPE: str
    EMBEDDING_MODEL: str
    CHUNK_SIZE: int
    OVERLAP_SIZE: int
    ZH_TITLE_ENHANCE: bool
    VECTOR_SEARCH_TOP_K: int
    SCORE_THRESHOLD: float = Field(description="a similarity in [0, 1], higher is stricter (not an L2 distance)")
    TEXT_SPLITTER_NAME: str
    LLM_MODELS: list[str] = Field(description="the default model first")
    HISTORY_LEN: int
    TEMPERATURE: float
    PROMPT_TEMPLATES: dict[str, dict[str, str]] = Field(description="template texts by type and name")


class ServerConfigs(ChatchatKeys):
    top_k: int
    score_threshold: float = Field(description="a similarity in [0, 1]")
    search_mode: SearchMode
    search_modes: list[SearchMode]
    chunk_size: int
    chunk_overlap: int
    zh_title_enhance: bool
    default_vs_type: str
    vector_store_types: list[str] = Field(description="the store types a new knowledge base can use here")
    default_embed_model: str
    embed_models: list[str]
    llm_models: list[str]
    default_llm: str | None
    temperature: float
    history_len: int
    max_upload_mb: float
    temp_knowledge_ttl_s: float = Field(description="seconds files of upload_temp_docs stay usable after last use")
    language: Literal["zh", "en"] = Field(description="the Web UI's default language")
    file_types: list[FileTypeInfo] = Field(description="what upload_docs accepts, with the loader of each")
    prompt_templates: dict[str, list[str]] = Field(description="template names by type (llm_chat, …)")


def chatchat_keys(settings: Settings, templates: dict[str, dict[str, str]], temperature: float) -> dict[str, Any]:
    """The settings' defaults under Chatchat 0.2's key names (the fields of ChatchatKeys)."""
    kb = settings.kb
    default = [settings.default_llm] if settings.default_llm else []
    return {
        "DEFAULT_VS_TYPE": kb.default_vs_type,
        "EMBEDDING_MODEL": kb.default_embed_model,
        "CHUNK_SIZE": kb.chunk_size,
        "OVERLAP_SIZE": kb.chunk_overlap,
        "ZH_TITLE_ENHANCE": kb.zh_title_enhance,
        "VECTOR_SEARCH_TOP_K": kb.top_k,
        "SCORE_THRESHOLD": kb.score_threshold,
        "TEXT_SPLITTER_NAME": SPLITTER_NAME,
        "LLM_MODELS": default + [name for name in sorted(settings.llm_models) if name not in default],
        "HISTORY_LEN": UI_HISTORY_LEN,
        "TEMPERATURE": temperature,
        "PROMPT_TEMPLATES": templates,
    }
