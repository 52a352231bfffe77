"""Export a knowledge base to an archive (server/knowledge_base/archive.py) and import one, into any store type.

An import reuses the archive's vectors when the target embedding model gives the same vectors as the one that
made them (checked on probe sentences, so a renamed model still matches and a different model under the same name
does not); otherwise it embeds the chunks again. Either way the chunks are the archive's, hand edits included.
An import is journaled: after a crash, start-up recovery drops the KB it had begun.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from server import __version__
from server.db import repository as repo
from server.db.models import KnowledgeBase, KnowledgeFile
from server.db.repository import FileRecord
from server.documents import Document
from server.embeddings import EmbeddingPool
from server.embeddings.base import Vectors
from server.errors import KnowledgeBaseExists, StoreCorrupted, ZhikuError
from server.knowledge_base.archive import (
    FORMAT,
    FORMAT_VERSION,
    ArchiveLimits,
    ArchiveWriter,
    ChunkEntry,
    ChunkingPart,
    EmbeddingPart,
    FileEntry,
    KbPart,
    LoadedArchive,
    LoadedFile,
    Manifest,
    read_archive,
)
from server.knowledge_base.catalog import KbCatalog
from server.knowledge_base.ingest import PreparedFile
from server.knowledge_base.journal import WriteJournal
from server.knowledge_base.locks import KbLocks
from server.knowledge_base.paths import validate_kb_name
from server.knowledge_base.probes import CrashProbes
from server.knowledge_base.service import KnowledgeBaseService
from server.knowledge_base.storage import KbStorage
from server.knowledge_base.writer import CommitHook, KbWriter
from server.vectorstores.registry import STORES

log = logging.getLogger(__name__)

PROBES = (
    "知识库问答：如何配置默认的嵌入模型？",
    "The quick brown fox jumps over the lazy dog.",
    "score_threshold 0.5, top_k 3",
    "2026 年 12 月 3 日，天气晴。",
)
SAME_MODEL_COSINE = 0.99  # onnx and torch runs of one model agree to ~0.9999; two models never come close
BATCH_CHUNKS = 2000  # chunks written per registry transaction during an import
VECTOR_GROUP = 50_000  # vectors read from the store at once during an export (FAISS copies its index per read)

Progress = Callable[[int, int], None]
"""(chunks done, chunks in all)."""
Defer = Callable[[str, Sequence[LoadedFile]], str]
"""Hands the files of an import that must be embedded again to a background job (KB name, files); its id."""


@dataclass(frozen=True)
class ExportReport:
    kb_name: str
    files: int
    chunks: int
    vectors: bool
    bytes: int


@dataclass(frozen=True)
class ImportRequest:
    archive: Path
    name: str | None = None  # none: the archive's KB name
    vs_type: str | None = None  # none: the archive's store type when this server has it, else the default
    embed_model: str | None = None  # none: the archive's model when configured here, else the default
    overwrite: bool = False  # replace a KB of that name (it is deleted first)


@dataclass(frozen=True)
class ImportReport:
    kb_name: str
    vs_type: str
    embed_model: str
    files: int
    chunks: int
    vectors_reused: bool
    job_id: str | None = None  # the background job embedding the chunks again, when one was asked for


@dataclass
class _Tally:
    """What an export wrote so far, for its manifest."""

    files: int = 0
    chunks: int = 0
    tags: set[str] = field(default_factory=set)
    chunking: set[ChunkingPart] = field(default_factory=set)

    def add(self, entry: FileEntry) -> None:
        self.files += 1
        self.chunks += entry.chunks
        self.tags.update(entry.tags)
        self.chunking.add(ChunkingPart(**entry.model_dump(include={"chunk_size", "chunk_overlap", "zh_title_enhance"})))


class KbPorter:
    def __init__(
        self,
        catalog: KbCatalog,
        storage: KbStorage,
        locks: KbLocks,
        writer: KbWriter,
        knowledge_bases: KnowledgeBaseService,
        embeddings: EmbeddingPool,
        journal: WriteJournal,
        probes: CrashProbes,
        limits: ArchiveLimits | None = None,
    ) -> None:
        self._catalog = catalog
        self._storage = storage
        self._locks = locks
        self._writer = writer
        self._kbs = knowledge_bases
        self._embeddings = embeddings
        self._journal = journal
        self._probes = probes
        self._limits = limits or ArchiveLimits()

    @property
    def work_dir(self) -> Path:
        """Archives being written or read wait here: on the data dir's filesystem, so imported files move in."""
        return self._storage.data_dir / ".archives"

    def sweep(self) -> int:
        """Remove what exports and imports of a process that died left in the work folder; only while no other
        process uses this data dir (start-up recovery ran). Returns how many entries went."""
        if not self.work_dir.is_dir():
            return 0
        gone = 0
        for path in self.work_dir.iterdir():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            gone += 1
        if gone:
            log.warning("removed %d leftovers of interrupted KB exports or imports", gone)
        return gone

    # -- export -----------------------------------------------------------------------------------------------

    def export(self, kb_name: str, target: Path, *, with_vectors: bool = True) -> ExportReport:
        """Write the KB to `target` as it is at one moment: writes to it wait until the export is done."""
        with self._locks(kb_name):
            kb = self._catalog.require(kb_name)
            writer = ArchiveWriter(target)
            try:
                tally = self._write_files(kb, writer, with_vectors)
                manifest = self._manifest(kb, tally, with_vectors)
                writer.finish(manifest)
            except BaseException:
                writer.abort()
                target.unlink(missing_ok=True)
                raise
        return ExportReport(kb_name, tally.files, tally.chunks, with_vectors, target.stat().st_size)

    def _write_files(self, kb: KnowledgeBase, writer: ArchiveWriter, with_vectors: bool) -> _Tally:
        store = self._storage.store(kb)
        with self._catalog.session() as session:
            files = repo.list_files(session, kb_id=kb.id)
            rows = [(_entry_fields(row), repo.file_vs_ids(session, file_id=row.id)) for row in files]
        tally = _Tally()
        found: dict[str, Vectors] = {}
        for index, (fields, ids) in enumerate(rows):
            if with_vectors and not all(chunk_id in found for chunk_id in ids):
                found = store.vectors(_group_ids(rows, index))  # a store reads many vectors at once far faster
            stored = store.get(ids)
            vectors = self._vectors_of(kb, found, [chunk.id for chunk in stored]) if with_vectors else None
            original = self._storage.content_path(kb.name, fields["file_name"])
            has_original = original.is_file() and not original.is_symlink()
            entry = FileEntry(**fields, chunks=len(stored), original=has_original)
            own = [ChunkEntry(file=entry.file_name, text=chunk.text, metadata=chunk.metadata) for chunk in stored]
            writer.add_file(entry, own, original if has_original else None, vectors)
            tally.add(entry)
        return tally

    def _vectors_of(self, kb: KnowledgeBase, found: dict[str, Vectors], ids: Sequence[str]) -> Vectors:
        missing = [chunk_id for chunk_id in ids if chunk_id not in found]
        if missing:
            raise StoreCorrupted(
                f"the store of {kb.name!r} lacks the vectors of {len(missing)} chunks; run recreate_vector_store, "
                "or export without vectors"
            )
        return np.stack([found[chunk_id] for chunk_id in ids]) if ids else np.zeros((0, 1), np.float32)

    def _manifest(self, kb: KnowledgeBase, tally: _Tally, with_vectors: bool) -> Manifest:
        return Manifest(
            format=FORMAT, format_version=FORMAT_VERSION, created_at=datetime.now(UTC).isoformat(),
            kb=KbPart(
                name=kb.name, info=kb.info, vs_type=kb.vs_type, embed_model=kb.embed_model,
                search_mode=kb.search_mode, ocr_mode=kb.ocr_mode, direct_answer_threshold=kb.direct_answer_threshold,
            ),
            embedding=self._fingerprint(kb.embed_model), files=tally.files, chunks=tally.chunks,
            vectors=with_vectors, tags=sorted(tally.tags), chunking=sorted(tally.chunking, key=repr),
            zhiku_version=__version__,
        )  # fmt: skip

    def _fingerprint(self, model: str) -> EmbeddingPart:
        probes = self._embeddings.embed_documents(model, list(PROBES))
        digest = hashlib.sha256(np.round(probes, 2).astype("<f4").tobytes()).hexdigest()[:16]
        return EmbeddingPart(
            model=model, dim=int(probes.shape[1]), fingerprint=digest, probes=np.round(probes, 6).tolist()
        )

    # -- import -----------------------------------------------------------------------------------------------

    def import_archive(
        self, request: ImportRequest, progress: Progress | None = None, *, defer: Defer | None = None
    ) -> ImportReport:
        """Check the whole archive, then make the KB; raises before anything is written when the archive is bad.
        With `defer`, chunks that need embedding again go to a background job instead of this call."""
        staging = self.work_dir / f"import-{uuid.uuid4().hex}"
        try:
            loaded = read_archive(request.archive, staging, self._limits)
            return self._import(loaded, request, progress or (lambda done, total: None), defer)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _import(
        self, loaded: LoadedArchive, request: ImportRequest, progress: Progress, defer: Defer | None
    ) -> ImportReport:
        source = loaded.manifest.kb
        name = validate_kb_name(request.name or source.name)
        vs_type = request.vs_type or (source.vs_type if source.vs_type in STORES.kb_types() else None)
        model = request.embed_model or (source.embed_model if source.embed_model in self._embeddings.names() else None)
        if self._catalog.find(name) is not None:
            if not request.overwrite:
                raise KnowledgeBaseExists(f"knowledge base {name!r} exists; import with overwrite=true to replace it")
            self._kbs.delete(name)
        fresh = not self._storage.kb_dir(name).exists()  # then a crash's leftovers may go with the whole folder
        entry = self._journal.begin(name, "import", {"archive_kb": source.name, "fresh_folder": fresh})
        try:
            made = self._kbs.create(
                name, vs_type=vs_type, embed_model=model, info=source.info, search_mode=source.search_mode,
                ocr_mode=source.ocr_mode,
            )  # fmt: skip
            if source.direct_answer_threshold is not None:
                self._kbs.set_direct_answer_threshold(name, source.direct_answer_threshold)
            reuse = loaded.manifest.vectors and self._same_model(made.embed_model, loaded.manifest.embedding)
            job_id = defer(name, loaded.files) if defer and not reuse and loaded.files else None
            if job_id is None:
                self._fill(name, made.embed_model, loaded, reuse, progress)
        except BaseException:
            self._undo(name)
            self._journal.finish(entry)
            raise
        self._journal.finish(entry)
        log.info("imported %s (%d chunks, vectors %s)", name, loaded.manifest.chunks, "reused" if reuse else "new")
        files, chunks = len(loaded.files), loaded.manifest.chunks
        return ImportReport(name, made.vs_type, made.embed_model, files, chunks, reuse, job_id)

    def _same_model(self, model: str, made_by: EmbeddingPart) -> bool:
        here = self._fingerprint(model)
        if here.dim != made_by.dim or len(here.probes) != len(made_by.probes):
            return False
        cosines = np.sum(np.asarray(here.probes) * np.asarray(made_by.probes), axis=1)
        return bool(np.min(cosines) >= SAME_MODEL_COSINE)

    def _fill(self, name: str, model: str, loaded: LoadedArchive, reuse: bool, progress: Progress) -> None:
        total, done = loaded.manifest.chunks, 0
        progress(0, total)
        for batch in _batches(loaded.files, BATCH_CHUNKS):
            prepared = [self._prepared(one, model, reuse) for one in batch]
            failed = self._writer.commit(
                name, prepared, move=True, replace=False, on_commit=self._settings(name, batch)
            )
            if failed:
                file_name, error = next(iter(failed.items()))
                raise type(error)(f"{file_name}: {error.message}")
            self._probes.reached("import:batch")
            done += sum(len(one.chunks) for one in batch)
            progress(done, total)

    def _settings(self, kb_name: str, batch: Sequence[LoadedFile]) -> CommitHook:
        """Tags and enabled are the registry's, not the chunks': set in the transaction that registers the files."""
        wanted = {one.entry.file_name: one.entry for one in batch}

        def apply(session: Session, files: Sequence[PreparedFile]) -> None:
            kb = repo.require_kb(session, kb_name)
            for prepared in files:
                entry = wanted[prepared.record.file_name]
                self._catalog.set_file_settings(session, kb, entry.file_name, entry.tags, entry.enabled)

        return apply

    def _prepared(self, one: LoadedFile, model: str, reuse: bool) -> PreparedFile:
        prepared = prepared_from(one.entry, one.chunks, one.original)
        if reuse and one.vectors is not None:
            prepared.vectors = one.vectors
        elif prepared.chunks:
            prepared.vectors = self._embeddings.embed_documents(model, prepared.texts)
        else:
            prepared.vectors = np.zeros((0, self._embeddings.dim(model)), np.float32)
        return prepared

    def _undo(self, name: str) -> None:
        try:
            if self._catalog.find(name) is not None:
                self._kbs.delete(name)
        except ZhikuError as error:  # recovery at the next start drops it (the journal entry stays)
            log.error("could not remove the half-imported KB %s: %s", name, error.message)
            raise


def prepared_from(entry: FileEntry, chunks: Sequence[ChunkEntry], original: Path | None) -> PreparedFile:
    """An archived file, ready to embed: its registry record, its chunks as archived, its original (given back its
    modification time). Imports done here and by a job (server/jobs/imports.py) both make files this way."""
    if original is not None:
        os.utime(original, (entry.mtime, entry.mtime))
    record = FileRecord(**entry.model_dump(include=set(FileRecord.__dataclass_fields__)))
    docs = [Document(page_content=chunk.text, metadata=dict(chunk.metadata)) for chunk in chunks]
    return PreparedFile(record, docs, source_path=original)


def _entry_fields(row: KnowledgeFile) -> dict[str, Any]:
    fields = {name: getattr(row, name) for name in FileRecord.__dataclass_fields__}
    return {**fields, "tags": list(row.tags or []), "enabled": bool(row.enabled)}


def _group_ids(rows: Sequence[tuple[object, list[str]]], start: int) -> list[str]:
    """The chunk ids of the files from `start` on, up to VECTOR_GROUP of them (at least the first file's)."""
    ids: list[str] = []
    for _, own in rows[start:]:
        if ids and len(ids) + len(own) > VECTOR_GROUP:
            break
        ids.extend(own)
    return ids


def _batches(files: Sequence[LoadedFile], max_chunks: int) -> Iterator[list[LoadedFile]]:
    batch: list[LoadedFile] = []
    size = 0
    for one in files:
        if batch and size + len(one.chunks) > max_chunks:
            yield batch
            batch, size = [], 0
        batch.append(one)
        size += len(one.chunks)
    if batch:
        yield batch
