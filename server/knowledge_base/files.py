"""File-level operations on a knowledge base: upload, delete, re-vectorize, edit chunks by id."""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.db import repository as repo
from server.db.engine import session_scope
from server.db.models import iso_utc
from server.db.repository import FileOrder
from server.errors import DuplicateFile, FileNotInKnowledgeBase, InvalidName, ZhikuError
from server.knowledge_base.context import KbContext
from server.knowledge_base.ingest import ChunkParams, PreparedFile, embed_prepared, prepare_custom, prepare_many
from server.knowledge_base.paths import content_file, list_content_files, validate_file_path
from server.knowledge_base.writer import commit_files, load_kb, remove_files

Failures = dict[str, ZhikuError]


@dataclass(frozen=True)
class StagedFile:
    """An upload saved under the KB's staging folder, waiting to be parsed and moved into content/."""

    path: Path
    file_name: str


@dataclass(frozen=True)
class FileDetail:
    file_name: str
    ext: str
    size: int
    chunk_count: int
    loader: str
    splitter: str
    chunk_size: int
    chunk_overlap: int
    custom_docs: bool
    version: int
    updated_at: str
    in_folder: bool
    in_db: bool


class FileService:
    def __init__(self, ctx: KbContext) -> None:
        self.ctx = ctx

    def list_files(self, kb_name: str) -> list[str]:
        kb = load_kb(self.ctx, kb_name)
        with session_scope(self.ctx.sessions) as session:
            return [row.file_name for row in repo.list_files(session, kb_id=kb.id)]

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
        kb = load_kb(self.ctx, kb_name)
        with session_scope(self.ctx.sessions) as session:
            total = repo.count_files(session, kb_id=kb.id)
            rows = repo.list_files(
                session, kb_id=kb.id, offset=offset, limit=limit, order_by=order_by, descending=descending
            )
            return total, [
                FileDetail(
                    row.file_name,
                    row.ext,
                    row.size,
                    row.chunk_count,
                    row.loader,
                    row.splitter,
                    row.chunk_size,
                    row.chunk_overlap,
                    row.custom_docs,
                    row.version,
                    iso_utc(row.updated_at),
                    content_file(self.ctx.data_dir, kb.name, row.file_name).is_file(),
                    True,
                )
                for row in rows
            ]

    def folder_only_files(self, kb_name: str) -> list[str]:
        """Files in the content folder that were never vectorized."""
        registered = set(self.list_files(kb_name))
        return [name for name in list_content_files(self.ctx.data_dir, kb_name) if name not in registered]

    def upload(
        self,
        kb_name: str,
        staged: Sequence[StagedFile],
        *,
        params: ChunkParams,
        override: bool = False,
        to_vector_store: bool = True,
        custom_docs: Mapping[str, Sequence[Any]] | None = None,
    ) -> Failures:
        kb = load_kb(self.ctx, kb_name)
        failed: Failures = {}
        accepted = []
        for item in staged:
            if not override and self._exists(kb_name, kb.id, item.file_name):
                failed[item.file_name] = DuplicateFile(
                    f"{item.file_name} already exists in {kb_name!r}; upload with override=true to replace it"
                )
            else:
                accepted.append(item)
        if not to_vector_store:
            for item in accepted:
                _move(item.path, content_file(self.ctx.data_dir, kb_name, item.file_name))
            return failed
        prepared, parse_failed = self._prepare(accepted, params, custom_docs or {})
        failed.update(parse_failed)
        embed_prepared(self.ctx.embeddings, kb.embed_model, prepared)
        failed.update(commit_files(self.ctx, kb_name, prepared, move=True, replace=override))
        return failed

    def _exists(self, kb_name: str, kb_id: int, file_name: str) -> bool:
        with session_scope(self.ctx.sessions) as session:
            if repo.get_file(session, kb_id=kb_id, file_name=file_name) is not None:
                return True
        return content_file(self.ctx.data_dir, kb_name, file_name).exists()

    def _prepare(
        self, items: Sequence[StagedFile], params: ChunkParams, custom_docs: Mapping[str, Sequence[Any]]
    ) -> tuple[list[PreparedFile], Failures]:
        prepared: list[PreparedFile] = []
        failed: Failures = {}
        for item in items:
            if item.file_name in custom_docs:
                try:
                    prepared.append(prepare_custom(item.path, item.file_name, custom_docs[item.file_name], params))
                except ZhikuError as error:
                    failed[item.file_name] = error
        to_parse = [(item.path, item.file_name) for item in items if item.file_name not in custom_docs]
        parsed, parse_failed = prepare_many(to_parse, params, self.ctx.parse_workers)
        return prepared + parsed, {**failed, **parse_failed}

    def delete(self, kb_name: str, file_names: Sequence[str], *, delete_content: bool = False) -> Failures:
        kb = load_kb(self.ctx, kb_name)
        names, failed = _validated(file_names)
        with self.ctx.locks(kb_name):
            removed = remove_files(self.ctx, kb, names)
            for name in names:
                path = content_file(self.ctx.data_dir, kb_name, name)
                if delete_content and path.is_file():
                    path.unlink()
                    removed.pop(name, None)
            failed.update(removed)
        return failed

    def update(
        self,
        kb_name: str,
        file_names: Sequence[str],
        *,
        params: ChunkParams,
        override_custom_docs: bool = False,
        custom_docs: Mapping[str, Sequence[Any]] | None = None,
    ) -> Failures:
        """Re-parse and re-embed files from the content folder (or from `custom_docs`)."""
        kb = load_kb(self.ctx, kb_name)
        names, failed = _validated(file_names)
        custom_docs = custom_docs or {}
        items = []
        for name in names:
            path = content_file(self.ctx.data_dir, kb_name, name)
            if name not in custom_docs:
                if self._keep_custom(kb.id, name, override_custom_docs):
                    continue  # hand-edited chunks survive unless override_custom_docs says otherwise
                if not path.is_file():
                    failed[name] = FileNotInKnowledgeBase(f"{name} is not in the content folder of {kb_name!r}")
                    continue
            items.append(StagedFile(path, name))
        prepared, prepare_failed = self._prepare(items, params, custom_docs)
        failed.update(prepare_failed)
        embed_prepared(self.ctx.embeddings, kb.embed_model, prepared)
        failed.update(commit_files(self.ctx, kb_name, prepared, move=False))
        return failed

    def _keep_custom(self, kb_id: int, name: str, override_custom_docs: bool) -> bool:
        if override_custom_docs:
            return False
        with session_scope(self.ctx.sessions) as session:
            row = repo.get_file(session, kb_id=kb_id, file_name=name)
            return bool(row and row.custom_docs)


def _validated(file_names: Sequence[str]) -> tuple[list[str], Failures]:
    names: list[str] = []
    failed: Failures = {}
    for raw in file_names:
        try:
            names.append(validate_file_path(raw))
        except InvalidName as error:
            failed[raw] = error
    return names, failed


def _move(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(source), str(target))
