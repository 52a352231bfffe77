"""Editing individual chunks by id (the chunk editor): replace text/metadata, delete, or add to a file."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.embeddings import EmbeddingPool
from server.errors import InvalidInput, ZhikuError
from server.knowledge_base.catalog import KbCatalog
from server.knowledge_base.ingest import Failures
from server.knowledge_base.writer import ChunkEdit, KbWriter


class ChunkService:
    def __init__(self, catalog: KbCatalog, embeddings: EmbeddingPool, writer: KbWriter) -> None:
        self._catalog = catalog
        self._embeddings = embeddings
        self._writer = writer

    def update_by_id(self, kb_name: str, docs: Mapping[str, Any]) -> Failures:
        """Apply {id: {"page_content", "metadata"} | None}; chunks not named are left exactly as they were.

        A null value deletes that chunk. An unknown id whose metadata names a file of the KB (`source`) adds a new
        chunk to that file. Edited files are marked custom_docs so a later update_docs keeps the edits.
        """
        kb = self._catalog.require(kb_name)
        failed: Failures = {}
        edits: list[ChunkEdit] = []
        for chunk_id, doc in docs.items():
            try:
                edits.append(self._edit(kb.embed_model, chunk_id, doc))
            except ZhikuError as error:
                failed[chunk_id] = error
        failed.update(self._writer.edit_chunks(kb_name, edits))
        return {chunk_id: failed[chunk_id] for chunk_id in docs if chunk_id in failed}

    def _edit(self, embed_model: str, chunk_id: str, doc: Any) -> ChunkEdit:
        if doc is None:
            return ChunkEdit(chunk_id)
        text, metadata = _parse_doc(chunk_id, doc)
        self._embeddings.check([text])
        return ChunkEdit(chunk_id, text, metadata, self._embeddings.embed_documents(embed_model, [text]))


def _parse_doc(chunk_id: str, doc: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(doc, dict):
        raise InvalidInput(f"docs[{chunk_id!r}] must be an object with page_content, or null to delete the chunk")
    text = doc.get("page_content")
    metadata = doc.get("metadata") or {}
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(f"docs[{chunk_id!r}].page_content must be non-empty text")
    if not isinstance(metadata, dict):
        raise InvalidInput(f"docs[{chunk_id!r}].metadata must be an object")
    return text, metadata
