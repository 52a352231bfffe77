"""File-level operations on a knowledge base: upload, list, delete, re-vectorize."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from server.db import repository as repo
from server.db.models import KnowledgeBase, iso_utc
from server.db.repository import FileOrder
from server.errors import DuplicateFile, FileNotInKnowledgeBase, InvalidName, LinkInContent, ZhikuError
from server.knowledge_base.catalog import KbCatalog
from server.knowledge_base.file_filter import checked_tags
from server.knowledge_base.ingest import CustomDocs, Failures, FilePreparer, SourceFile, parse_custom_docs
from server.knowledge_base.params import Chunking, ChunkParams, KbDefaults, for_kb
from server.knowledge_base.paths import prepare_target, validate_file_path
from server.knowledge_base.storage import KbStorage
from server.knowledge_base.uploads import Upload, stage_uploads
from server.knowledge_base.writer import KbWriter


@dataclass(frozen=True)
class UploadOptions:
    override: bool = False
    to_vector_store: bool = True
    chunking: Chunking = field(default_factory=Chunking)
    docs: str | dict[str, Any] | None = None  # custom chunks, as JSON text or an object (parse_custom_docs)
    tags: Sequence[str] | None = None  # given: the uploaded files' tags; None keeps a replaced file's tags


@dataclass(frozen=True)
class UpdateOptions:
    chunking: Chunking = field(default_factory=Chunking)
    override_custom_docs: bool = False  # re-parse files whose chunks were written by hand, too
    docs: str | dict[str, Any] | None = None  # custom chunks, as JSON text or an object (parse_custom_docs)


@dataclass(frozen=True)
class FileDetail:
    """A registered file: how it was read and split, its chunk count, whether its chunks were written by hand
    (custom_docs: update_docs keeps them) and whether it is still in the content folder."""

    file_name: str
    ext: str
    size: int
    chunk_count: int
    loader: str
    splitter: str
    chunk_size: int
    chunk_overlap: int
    custom_docs: bool
    ocr: bool  # some of its text was read by OCR (scans, images)
    version: int
    updated_at: str
    in_folder: bool
    in_db: bool
    tags: list[str] = field(default_factory=list)
    enabled: bool = True  # False: kept, but never retrieved


class FileService:
    def __init__(
        self,
        catalog: KbCatalog,
        storage: KbStorage,
        preparer: FilePreparer,
        writer: KbWriter,
        defaults: KbDefaults,
        *,
        max_upload_bytes: int,
    ) -> None:
        self._catalog = catalog
        self._storage = storage
        self._preparer = preparer
        self._writer = writer
        self._defaults = defaults
        self._max_upload_bytes = max_upload_bytes

    def list_files(self, kb_name: str) -> list[str]:
        return self._catalog.file_names(self._catalog.require(kb_name))

    def file_details(
        self,
        kb_name: str,
        *,
        offset: int = 0,
        limit: int = 50,
        order_by: FileOrder = "file_name",
        descending: bool = False,
    ) -> tuple[int, list[FileDetail]]:
        """One page of the registry's files (with whether each is still on disk) and the total count."""
        kb = self._catalog.require(kb_name)
        with self._catalog.session() as session:
            total = repo.count_files(session, kb_id=kb.id)
            rows = repo.list_files(
                session, kb_id=kb.id, offset=offset, limit=limit, order_by=order_by, descending=descending
            )
            return total, [self._detail(kb, row) for row in rows]

    def _detail(self, kb: KnowledgeBase, row: Any) -> FileDetail:
        try:
            in_folder = self._storage.content_file(kb.name, row.file_name).is_file()
        except LinkInContent:
            in_folder = False
        return FileDetail(
            row.file_name,
            row.ext,
            row.size,
            row.chunk_count,
            row.loader,
            row.splitter,
            row.chunk_size,
            row.chunk_overlap,
            row.custom_docs,
            row.ocr,
            row.version,
            iso_utc(row.updated_at),
            in_folder,
            True,
            list(row.tags or []),
            row.enabled,
        )

    def set_tags(self, kb_name: str, file_name: str, tags: Sequence[str]) -> FileDetail:
        """Replace a file's tags; the next search's filter sees them (no chunk is rewritten: see file_filter)."""
        return self._set_labels(kb_name, file_name, tags=checked_tags(tags))

    def set_enabled(self, kb_name: str, file_name: str, enabled: bool) -> FileDetail:
        """Enable or disable a file without deleting it; a disabled file is never retrieved."""
        return self._set_labels(kb_name, file_name, enabled=enabled)

    def _set_labels(
        self, kb_name: str, file_name: str, *, tags: list[str] | None = None, enabled: bool | None = None
    ) -> FileDetail:
        kb = self._catalog.require(kb_name)
        name = validate_file_path(file_name)
        with self._catalog.session() as session:
            row = repo.get_file(session, kb_id=kb.id, file_name=name)
            if row is None:
                raise FileNotInKnowledgeBase(f"{name} is not a file of {kb_name!r}; see list_files")
            if tags is not None:
                row.tags = tags
            if enabled is not None:
                row.enabled = enabled
            session.flush()
            return self._detail(kb, row)

    def folder_only_files(self, kb_name: str) -> list[str]:
        """Files in the content folder that were never vectorized."""
        registered = set(self.list_files(kb_name))
        return [name for name in self._storage.content_files(kb_name) if name not in registered]

    def upload(self, kb_name: str, uploads: Sequence[Upload], options: UploadOptions) -> Failures:
        """Stage the uploaded bytes beside the KB, ingest them, and clean up; returns the files that failed."""
        kb = self._catalog.require(kb_name)
        params = for_kb(self._defaults.chunk_params(options.chunking), kb.ocr_mode)
        custom = parse_custom_docs(options.docs)
        root = self._storage.staging_dir(kb_name) / uuid.uuid4().hex
        tags = checked_tags(options.tags) if options.tags is not None else None
        try:
            staged = stage_uploads(root, uploads, self._max_upload_bytes)
            failed = self._ingest(kb, staged, params, options, custom)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        uploaded = {item.file_name for item in staged}
        if tags is not None:
            self._tag_uploaded(kb, [name for name in uploaded if name not in failed], tags)
        others = {name: chunks for name, chunks in custom.items() if name not in uploaded}
        if others and options.to_vector_store:  # Chatchat applies every key of `docs`, files not uploaded now too
            failed.update(self._custom_for_kept_files(kb, others, options.chunking))
        return failed

    def _tag_uploaded(self, kb: KnowledgeBase, names: Sequence[str], tags: list[str]) -> None:
        with self._catalog.session() as session:
            for name in names:
                row = repo.get_file(session, kb_id=kb.id, file_name=name)
                if row is not None:  # to_vector_store=false registers nothing: its files have no tags to keep
                    row.tags = tags

    def _custom_for_kept_files(self, kb: KnowledgeBase, custom: CustomDocs, chunking: Chunking) -> Failures:
        failed: Failures = {}
        for name in custom:
            path = self._storage.content_path(kb.name, name)
            if not self._catalog.is_registered(kb, name) and not (path.is_file() and not path.is_symlink()):
                failed[name] = FileNotInKnowledgeBase(
                    f"docs names {name}, which is neither uploaded now nor in {kb.name!r}; upload the file with it"
                )
        kept = {name: chunks for name, chunks in custom.items() if name not in failed}
        if kept:
            failed.update(self.update(kb.name, list(kept), UpdateOptions(chunking, True, dict(kept))))
        return failed

    def ingest(
        self, kb_name: str, files: Sequence[SourceFile], params: ChunkParams, *, override: bool = False
    ) -> Failures:
        """Ingest files already on this machine (their bytes are moved into the content folder)."""
        kb = self._catalog.require(kb_name)
        return self._ingest(kb, files, for_kb(params, kb.ocr_mode), UploadOptions(override=override), {})

    def delete(self, kb_name: str, file_names: Sequence[str], *, delete_content: bool = False) -> Failures:
        self._catalog.require(kb_name)
        names, failed = _validated(file_names)
        failed.update(self._writer.remove(kb_name, names, delete_content=delete_content))
        return failed

    def update(self, kb_name: str, file_names: Sequence[str], options: UpdateOptions | None = None) -> Failures:
        """Re-parse and re-embed files from the content folder (or from `options.docs`)."""
        options = options or UpdateOptions()
        custom = parse_custom_docs(options.docs)
        kb = self._catalog.require(kb_name)
        params = for_kb(self._defaults.chunk_params(options.chunking), kb.ocr_mode)
        names, failed = _validated(file_names)
        items = self._to_update(kb, names, custom, options.override_custom_docs, failed)
        prepared, prepare_failed = self._preparer.prepare(items, params, custom)
        failed.update(prepare_failed)
        self._preparer.embed(kb.embed_model, prepared)
        failed.update(self._writer.commit(kb_name, prepared, move=False))
        return failed

    def _to_update(
        self, kb: KnowledgeBase, names: list[str], custom: CustomDocs, override_custom: bool, failed: Failures
    ) -> list[SourceFile]:
        """The files to re-parse; a file missing from the folder is added to `failed`."""
        items = []
        for name in names:
            path = self._storage.content_path(kb.name, name)
            if name not in custom:
                if not override_custom and self._catalog.has_custom_docs(kb, name):
                    continue  # hand-edited chunks survive unless override_custom_docs says otherwise
                if path.is_symlink() or not path.is_file():
                    failed[name] = FileNotInKnowledgeBase(f"{name} is not in the content folder of {kb.name!r}")
                    continue
            items.append(SourceFile(path, name))
        return items

    def _ingest(
        self,
        kb: KnowledgeBase,
        files: Sequence[SourceFile],
        params: ChunkParams,
        options: UploadOptions,
        custom: CustomDocs,
    ) -> Failures:
        failed: Failures = {}
        accepted = []
        for item in files:
            try:
                if not options.override:
                    self.refuse_taken(kb, item.file_name)
                if not options.to_vector_store:
                    target = self._storage.content_path(kb.name, item.file_name)
                    prepare_target(target, item.file_name)
                    shutil.move(item.path, target)
                accepted.append(item)
            except ZhikuError as error:
                failed[item.file_name] = error
        if not options.to_vector_store:
            return failed
        prepared, parse_failed = self._preparer.prepare(accepted, params, custom)
        failed.update(parse_failed)
        self._preparer.embed(kb.embed_model, prepared)
        failed.update(self._writer.commit(kb.name, prepared, move=True, replace=options.override))
        return failed

    def refuse_taken(self, kb: KnowledgeBase, file_name: str) -> None:
        """Raises DuplicateFile when the name is registered or a file (or link) has it in the content folder."""
        path = self._storage.content_path(kb.name, file_name)
        if self._catalog.is_registered(kb, file_name) or path.is_file() or path.is_symlink():
            raise DuplicateFile.name_taken(file_name, kb.name)


def _validated(file_names: Sequence[str]) -> tuple[list[str], Failures]:
    names: list[str] = []
    failed: Failures = {}
    for raw in file_names:
        try:
            names.append(validate_file_path(raw))
        except InvalidName as error:
            failed[raw] = error
    return names, failed
