"""Rebuilding a KB's vectors from its content folder into a fresh store, then switching over in one step.

Searches keep using the old store until the switch; writes to the KB wait for the rebuild (the KB lock).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from server.db.models import KnowledgeBase
from server.embeddings import EmbeddingPool
from server.errors import InvalidInput, KnowledgeBaseNotFound, ZhikuError
from server.knowledge_base.catalog import KbCatalog
from server.knowledge_base.ingest import FilePreparer, PreparedFile
from server.knowledge_base.keywords import KeywordIndexes
from server.knowledge_base.lifecycle import KbLifecycle
from server.knowledge_base.locks import KbLocks
from server.knowledge_base.params import Chunking, ChunkParams, KbDefaults, for_kb
from server.knowledge_base.probes import CrashProbes
from server.knowledge_base.service import KnowledgeBaseService
from server.knowledge_base.storage import KbStorage
from server.vectorstores.base import VectorStore
from server.vectorstores.registry import StoreSpec

log = logging.getLogger(__name__)

Built = list[tuple[PreparedFile, list[str]]]


@dataclass(frozen=True)
class RebuildProgress:
    total: int
    finished: int
    doc: str
    code: int = 200
    msg: str = ""


@dataclass(frozen=True)
class RebuildDone:
    """The last event of a streamed rebuild: success with the files left out, or the error that stopped it."""

    code: int
    msg: str
    failed_files: dict[str, str] | None = None


@dataclass(frozen=True)
class RebuildRequest:
    vs_type: str | None = None  # None: keep the KB's store type
    embed_model: str | None = None  # None: keep the KB's embedding model
    chunking: Chunking = field(default_factory=Chunking)
    allow_empty_kb: bool = True


@dataclass
class _Build:
    kb: KnowledgeBase
    store: VectorStore
    model: str
    params: ChunkParams
    on_progress: Callable[[RebuildProgress], None]
    failed: dict[str, str] = field(default_factory=dict)


class RebuildService:
    def __init__(
        self,
        catalog: KbCatalog,
        storage: KbStorage,
        keywords: KeywordIndexes,
        preparer: FilePreparer,
        lifecycle: KbLifecycle,
        locks: KbLocks,
        embeddings: EmbeddingPool,
        defaults: KbDefaults,
        probes: CrashProbes,
        kbs: KnowledgeBaseService,
    ) -> None:
        self._catalog = catalog
        self._storage = storage
        self._keywords = keywords
        self._preparer = preparer
        self._lifecycle = lifecycle
        self._locks = locks
        self._embeddings = embeddings
        self._defaults = defaults
        self._probes = probes
        self._kbs = kbs

    def recreate(
        self,
        kb_name: str,
        request: RebuildRequest | None = None,
        on_progress: Callable[[RebuildProgress], None] = lambda _: None,
    ) -> dict[str, str]:
        """Rebuild every file of the KB; returns {file_name: reason} for files that could not be included."""
        request = request or RebuildRequest()
        params = self._defaults.chunk_params(request.chunking)
        with self._locks(kb_name):
            kb = self._catalog.require(kb_name)
            params = for_kb(params, kb.ocr_mode)
            model = request.embed_model or kb.embed_model
            self._embeddings.get(model)
            names = self._storage.content_files(kb_name)
            custom = self._custom_files(kb)
            if not names and not custom and not request.allow_empty_kb:
                raise InvalidInput(f"knowledge base {kb_name!r} has no files to rebuild from (allow_empty_kb=false)")
            spec, entry = self._lifecycle.rebuild_target(kb, request.vs_type or kb.vs_type, model)
            self._probes.reached("rebuild:journaled")
            build = _Build(kb, self._storage.open(spec), model, params, on_progress)
            try:
                done = self._build(build, spec, names, custom)
            except BaseException:
                build.store.close()
                self._lifecycle.abandon_rebuild(entry, spec)
                raise
            self._lifecycle.switch(kb, spec, done, entry)
        log.info("rebuilt %s: %d files into %s/%s", kb.name, len(done), spec.vs_type, spec.embed_model)
        return build.failed

    def _build(
        self, build: _Build, spec: StoreSpec, names: list[str], custom: dict[str, list[dict[str, Any]]]
    ) -> Built:
        """Fill the new store and keyword index (closed when this returns)."""
        build.store.create()
        done = self._fill(build, names, custom)
        build.store.flush()
        build.store.close()
        keywords = self._keywords.index(spec.kb_name, spec.collection)
        keywords.create()
        for prepared, ids in done:
            keywords.add(ids, prepared.texts)
        self._probes.reached("rebuild:built")
        return done

    def stream(self, kb_name: str, request: RebuildRequest | None = None) -> Iterator[RebuildProgress | RebuildDone]:
        """The rebuild's progress as it happens, then one RebuildDone; a KB that is not registered but has a
        content folder is registered first (see `_register_from_folder`). Errors before the work starts raise.

        The rebuild runs in its own thread, so a slow reader never holds the KB lock longer than the work takes.
        """
        request = request or RebuildRequest()
        self._defaults.chunk_params(request.chunking)
        created = self._register_from_folder(kb_name, request)
        events: queue.Queue[Any] = queue.Queue()
        done = f"created {kb_name} from its content folder" if created else f"rebuilt {kb_name}"
        threading.Thread(target=self._run, args=(kb_name, request, events, done), daemon=True).start()
        return _drain(events)

    def _register_from_folder(self, kb_name: str, request: RebuildRequest) -> bool:
        """Chatchat's way to add a KB: copy files into <data_dir>/<kb>/content/, then rebuild with allow_empty_kb.
        True when the KB was registered now; raises KnowledgeBaseNotFound when there is nothing to register."""
        if self._catalog.find(kb_name) is not None:
            return False
        folder = self._storage.kb_dir(kb_name) / "content"
        if folder.is_symlink() or not folder.is_dir():
            raise KnowledgeBaseNotFound(
                f"knowledge base {kb_name!r} does not exist, and there is no folder <data_dir>/{kb_name}/content/ to "
                "build it from; copy its files there, or create it with create_knowledge_base"
            )
        if not request.allow_empty_kb:
            raise KnowledgeBaseNotFound(
                f"knowledge base {kb_name!r} is not registered; send allow_empty_kb=true to create it from the files "
                f"in <data_dir>/{kb_name}/content/"
            )
        self._kbs.create(kb_name, vs_type=request.vs_type, embed_model=request.embed_model)
        return True

    def _run(self, kb_name: str, request: RebuildRequest | None, events: queue.Queue[Any], done: str) -> None:
        try:
            failed = self.recreate(kb_name, request, on_progress=events.put)
            events.put(RebuildDone(200, done, failed))
        except ZhikuError as error:
            events.put(RebuildDone(error.status_code, error.message))
        finally:
            events.put(None)

    def _custom_files(self, kb: KnowledgeBase) -> dict[str, list[dict[str, Any]]]:
        """Hand-made chunks cannot be re-parsed from a file, so they are carried over from the current store."""
        ids = self._catalog.custom_file_chunk_ids(kb)
        if not ids:
            return {}
        store = self._storage.store(kb)
        return {
            name: [{"page_content": c.text, "metadata": c.metadata} for c in store.get(chunk_ids)]
            for name, chunk_ids in ids.items()
        }

    def _fill(self, build: _Build, names: list[str], custom: dict[str, list[dict[str, Any]]]) -> Built:
        all_names = sorted(set(names) | set(custom))
        done: Built = []
        for index, name in enumerate(all_names, start=1):
            try:
                path = self._storage.content_file(build.kb.name, name)
                prepared = self._preparer.prepare_one(path, name, build.params, custom.get(name))
                self._preparer.embed(build.model, [prepared])
                assert prepared.vectors is not None
                done.append((prepared, build.store.add(prepared.texts, prepared.vectors, prepared.metadatas)))
                msg = f"({index} / {len(all_names)}): {name}"
                build.on_progress(RebuildProgress(len(all_names), index, name, msg=msg))
            except ZhikuError as error:
                build.failed[name] = error.message
                build.on_progress(RebuildProgress(len(all_names), index, name, error.status_code, error.message))
        return done


def _drain(events: queue.Queue[Any]) -> Iterator[RebuildProgress | RebuildDone]:
    while (event := events.get()) is not None:
        yield event
