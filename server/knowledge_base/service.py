"""Knowledge-base level operations: create, delete, describe, list, settings, locate files for download."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from server.db import repository as repo
from server.db.models import KnowledgeBase, iso_utc
from server.embeddings import EmbeddingPool
from server.errors import FileNotInKnowledgeBase, InvalidInput
from server.knowledge_base.catalog import KbCatalog
from server.knowledge_base.lifecycle import KbLifecycle, NewKb
from server.knowledge_base.params import KbDefaults
from server.knowledge_base.paths import validate_kb_name
from server.knowledge_base.storage import KbStorage
from server.ocr import check_mode as check_ocr_mode
from server.retrieval.modes import KbSearchMode, check_mode
from server.vectorstores.registry import STORES


@dataclass(frozen=True)
class KbSummary:
    """A knowledge base: its store and model, its file count, when it was created (ISO 8601, UTC) and its own
    search mode ("" follows the settings' kb.search_mode) and OCR mode ("" follows ocr.mode)."""

    name: str
    info: str
    vs_type: str
    embed_model: str
    file_count: int
    created_at: str
    search_mode: str = ""  # "" = the global default (kb.search_mode)
    sync_folder: bool = False  # follows its content folder (server/jobs/sync.py)
    ocr_mode: str = ""  # "" = the global default (ocr.mode)
    direct_answer_threshold: float | None = None  # None = the global default (kb.direct_answer_threshold)


class KnowledgeBaseService:
    def __init__(
        self,
        catalog: KbCatalog,
        storage: KbStorage,
        lifecycle: KbLifecycle,
        embeddings: EmbeddingPool,
        defaults: KbDefaults,
    ) -> None:
        self._catalog = catalog
        self._storage = storage
        self._lifecycle = lifecycle
        self._embeddings = embeddings
        self._defaults = defaults

    def list_names(self) -> list[str]:
        return self._catalog.names()

    def list_details(self) -> list[KbSummary]:
        with self._catalog.session() as session:
            return [_summary(session, kb) for kb in repo.list_kbs(session)]

    def describe(self, name: str) -> KbSummary:
        with self._catalog.session() as session:
            return _summary(session, repo.require_kb(session, name))

    def create(
        self,
        name: str,
        *,
        vs_type: str | None = None,
        embed_model: str | None = None,
        info: str = "",
        search_mode: KbSearchMode | str = "",
        ocr_mode: str = "",
    ) -> KbSummary:
        validate_kb_name(name)
        if search_mode:
            check_mode(search_mode)
        if ocr_mode:
            check_ocr_mode(ocr_mode)
        vs_type = STORES.check_kb_type(vs_type or self._defaults.vs_type)
        embed_model = embed_model or self._defaults.embed_model
        self._embeddings.get(embed_model)  # raises UnknownEmbeddingModel with the configured names
        self._lifecycle.create(NewKb(name, info, vs_type, embed_model, search_mode, ocr_mode))
        return self.describe(name)

    def delete(self, name: str) -> None:
        validate_kb_name(name)
        self._lifecycle.drop(name)

    def set_search_mode(self, name: str, search_mode: KbSearchMode | str) -> str:
        """Set the KB's default search mode; "" falls back to the global kb.search_mode."""
        if search_mode:
            check_mode(search_mode)
        with self._catalog.session() as session:
            kb = repo.require_kb(session, name)
            kb.search_mode = search_mode
            return kb.search_mode

    def set_ocr_mode(self, name: str, ocr_mode: str) -> str:
        """Set how the KB's files are OCR'd (auto, always, never); "" falls back to the global ocr.mode."""
        if ocr_mode:
            check_ocr_mode(ocr_mode)
        with self._catalog.session() as session:
            kb = repo.require_kb(session, name)
            kb.ocr_mode = ocr_mode
            return kb.ocr_mode

    def set_direct_answer_threshold(self, name: str, threshold: float | None) -> float | None:
        """Set the score above which KB chat answers with a FAQ's stored answer; None falls back to the setting."""
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise InvalidInput(
                f"direct_answer_threshold must be within [0, 1] (1 turns direct answers off), got {threshold}"
            )
        with self._catalog.session() as session:
            kb = repo.require_kb(session, name)
            kb.direct_answer_threshold = threshold
            return kb.direct_answer_threshold

    def update_info(self, name: str, info: str) -> str:
        with self._catalog.session() as session:
            kb = repo.require_kb(session, name)
            kb.info = info
            return kb.info

    def file_path(self, name: str, file_name: str) -> Path:
        """The content file to download; raises when it is not in the KB folder."""
        self._catalog.require(name)
        path = self._storage.content_file(name, file_name)
        if not path.is_file():
            raise FileNotInKnowledgeBase(f"{file_name} is not in knowledge base {name!r}; see list_files")
        return path


def _summary(session: Session, kb: KnowledgeBase) -> KbSummary:
    count = repo.count_files(session, kb_id=kb.id)
    created = iso_utc(kb.created_at)
    return KbSummary(
        kb.name, kb.info, kb.vs_type, kb.embed_model, count, created, kb.search_mode, kb.sync_folder, kb.ocr_mode,
        kb.direct_answer_threshold,
    )  # fmt: skip
