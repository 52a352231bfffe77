"""What /server/configs answers: the defaults and the choices a client offers, built once from the settings.

The Web UI builds its forms from this model alone, so every list here (search modes, store types, file types,
models) has one source: the registries and the settings.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from server.retrieval.modes import SearchMode

UI_HISTORY_LEN = 3
"""Earlier turns the Web UI sends with a question unless the user picks another number."""


class FileTypeInfo(BaseModel):
    extension: str = Field(examples=[".docx"])
    loader: str = Field(examples=["DocxLoader"], description="the loader that reads it, shown in list_file_details")


class ServerConfigs(BaseModel):
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
