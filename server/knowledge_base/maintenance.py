"""Keeping the registry, the content folders and the vector stores in step (used by init_database.py)."""

from __future__ import annotations

from server.knowledge_base.catalog import KbCatalog
from server.knowledge_base.ingest import file_sha256
from server.knowledge_base.storage import KbStorage
from server.knowledge_base.writer import KbWriter


class MaintenanceService:
    def __init__(self, catalog: KbCatalog, storage: KbStorage, writer: KbWriter) -> None:
        self._catalog = catalog
        self._storage = storage
        self._writer = writer

    def kb_names(self) -> list[str]:
        """Every KB: registered ones and folders of the data dir with a content/ folder."""
        return sorted(set(self._storage.folder_kb_names()) | set(self._catalog.names()))

    def registered_files(self, kb_name: str) -> list[str]:
        return list(self._catalog.registered(self._catalog.require(kb_name)))

    def changed_files(self, kb_name: str) -> list[str]:
        """Content files that are new, or whose bytes differ from what was vectorized."""
        known = self._catalog.registered(self._catalog.require(kb_name))
        changed = []
        for name in self._storage.content_files(kb_name):
            entry = known.get(name)
            if entry is None or (not entry[1] and entry[0] != file_sha256(self._storage.content_file(kb_name, name))):
                changed.append(name)
        return changed

    def prune_db(self, kb_name: str) -> list[str]:
        """Drop registry rows (and vectors) of files that are gone from the content folder."""
        on_disk = set(self._storage.content_files(kb_name))
        known = self._catalog.registered(self._catalog.require(kb_name))
        gone = [name for name, (_, custom) in known.items() if name not in on_disk and not custom]
        if gone:
            self._writer.remove(kb_name, gone)
        return gone

    def prune_folder(self, kb_name: str) -> list[str]:
        """Delete content files that were never vectorized into the registry."""
        known = self._catalog.registered(self._catalog.require(kb_name))
        stray = [name for name in self._storage.content_files(kb_name) if name not in known]
        for name in stray:
            self._storage.content_file(kb_name, name).unlink()
        return stray

    def needs_build(self, kb_name: str) -> bool:
        """True when a KB folder is not registered yet or has no vectors although it has files."""
        kb = self._catalog.find(kb_name)
        if kb is None:
            return True
        return bool(self._storage.content_files(kb_name)) and self._catalog.chunk_count(kb) == 0

    def clear_registry(self) -> None:
        """Empty the registry; files on disk and vectors are untouched."""
        self._catalog.clear()
