"""Where a knowledge base's data lives: its folders under the data dir and its vector store.

`store(kb)` is the cached store searches and writes use; `open(spec)` opens another location (a rebuild's target,
a store to drop) outside the cache.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from server.db.models import KnowledgeBase
from server.embeddings import EmbeddingPool
from server.errors import InvalidName, StoreCorrupted
from server.knowledge_base import paths
from server.vectorstores.base import VectorStore
from server.vectorstores.cache import StoreCache
from server.vectorstores.registry import STORES, StoreOptions, StoreSpec, create_store

log = logging.getLogger(__name__)


class KbStorage:
    def __init__(
        self,
        data_dir: Path,
        *,
        embeddings: EmbeddingPool,
        stores: StoreCache,
        store_options: Mapping[str, StoreOptions],
        reserved: frozenset[str] = frozenset(),
    ) -> None:
        self.data_dir = data_dir
        self._embeddings = embeddings
        self._stores = stores
        self._options = dict(store_options)
        self._reserved = reserved

    # -- folders -----------------------------------------------------------------------------------------------

    def kb_dir(self, kb_name: str) -> Path:
        return paths.kb_dir(self.data_dir, kb_name)

    def check_new_kb_folder(self, kb_name: str) -> None:
        """Refuse a name whose folder would be something the data dir holds already (the registry file, a Milvus
        Lite database, a file)."""
        folder = self.kb_dir(kb_name)
        if kb_name in self._reserved or (folder.exists() and not folder.is_dir()):
            raise InvalidName(f"knowledge base name {kb_name!r} is taken by a file of the data folder; pick another")

    def content_file(self, kb_name: str, file_name: str) -> Path:
        """An existing file's place; raises LinkInContent for a path through a symbolic link (never followed)."""
        return paths.content_file(self.data_dir, kb_name, file_name)

    def content_path(self, kb_name: str, file_name: str) -> Path:
        """Where a file of that name goes, links or not (for writing, after `paths.prepare_target`)."""
        return paths.content_dir(self.data_dir, kb_name) / paths.validate_file_path(file_name)

    def content_files(self, kb_name: str) -> list[str]:
        return paths.list_content_files(self.data_dir, kb_name)

    def staging_dir(self, kb_name: str) -> Path:
        return paths.staging_dir(self.data_dir, kb_name)

    def vector_dir(self, kb_name: str, embed_model: str, collection: str) -> Path:
        return paths.vector_dir(self.data_dir, kb_name, embed_model, collection)

    def keyword_file(self, kb_name: str, collection: str) -> Path:
        return paths.keyword_file(self.data_dir, kb_name, collection)

    def folder_kb_names(self) -> list[str]:
        """Knowledge bases found on disk: every folder of the data dir that has a content/ folder."""
        if not self.data_dir.is_dir():
            return []
        return sorted(
            p.name for p in self.data_dir.iterdir() if (p / "content").is_dir() and not p.name.startswith(".")
        )

    # -- vectors -----------------------------------------------------------------------------------------------

    def spec(
        self,
        kb: KnowledgeBase,
        *,
        vs_type: str | None = None,
        embed_model: str | None = None,
        collection: str | None = None,
    ) -> StoreSpec:
        """Where `kb`'s vectors live; the keyword arguments describe another location (a rebuild target)."""
        model = embed_model or kb.embed_model
        collection = collection or kb.vs_collection
        return StoreSpec(
            vs_type=vs_type or kb.vs_type,
            kb_id=kb.id,
            kb_name=kb.name,
            embed_model=model,
            dim=self._embeddings.dim(model),
            directory=self.vector_dir(kb.name, model, collection),
            collection=collection,
        )

    def ref(self, spec: StoreSpec) -> dict[str, Any]:
        """A store's location as JSON, for the write journal (the folder relative to the data dir)."""
        return {
            "vs_type": spec.vs_type,
            "kb_id": spec.kb_id,
            "kb_name": spec.kb_name,
            "embed_model": spec.embed_model,
            "dim": spec.dim,
            "collection": spec.collection,
        }

    @staticmethod
    def spec_of(ref: Mapping[str, Any], data_dir: Path) -> StoreSpec:
        kb_name, model, collection = str(ref["kb_name"]), str(ref["embed_model"]), str(ref["collection"])
        directory = paths.vector_dir(data_dir, kb_name, model, collection)
        return StoreSpec(str(ref["vs_type"]), int(ref["kb_id"]), kb_name, model, int(ref["dim"]), directory, collection)

    def store(self, kb: KnowledgeBase) -> VectorStore:
        """The KB's open store, from the cache."""
        return self._stores.get(self.spec(kb))

    def open(self, spec: StoreSpec) -> VectorStore:
        """A store outside the cache; the caller closes it."""
        return create_store(spec, self._options)

    def drop(self, spec: StoreSpec) -> None:
        """Remove a store and everything in it; one whose files cannot even be read is removed as files."""
        try:
            store = self.open(spec)
        except StoreCorrupted:
            if not STORES.get(spec.vs_type).in_directory:
                raise
            log.warning("removing the unreadable store files of %s in %s", spec.kb_name, spec.directory)
            shutil.rmtree(spec.directory, ignore_errors=True)
        else:
            store.drop()
            store.close()
        with contextlib.suppress(OSError):  # the model's folder goes with its last collection
            spec.directory.parent.rmdir()

    def evict(self, kb_name: str) -> None:
        """Close the KB's cached stores, so the next `store()` reopens from what the registry says."""
        self._stores.evict(kb_name)

    def close(self) -> None:
        self._stores.close_all()
