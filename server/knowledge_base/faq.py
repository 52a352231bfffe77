"""FAQ knowledge bases: question–answer pairs imported from CSV, XLSX, JSON or JSONL, listed and edited.

A FAQ lives in its KB as one `<name>.faq.jsonl` file (server/loaders/faq.py), written through the same upload path
as any file: it is journaled, so a crash leaves the old pairs or the new ones, never half of each; export, tags,
folder sync and rebuilds treat it as the file it is. An edit rewrites the file whole.
"""

from __future__ import annotations

import io
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from server.errors import FileNotInKnowledgeBase, InvalidFaq, ZhikuError
from server.knowledge_base.catalog import KbCatalog
from server.knowledge_base.files import FileService, UploadOptions
from server.knowledge_base.paths import validate_upload_name
from server.knowledge_base.storage import KbStorage
from server.knowledge_base.uploads import stage_uploads
from server.loaders import LoadLimits
from server.loaders.faq import FaqEntry, FaqLimits, checked, dump_entries, faq_name, is_faq, read_pairs, read_stored
from server.loaders.limits import ZIP_FORMATS, check_zip


@dataclass(frozen=True)
class FaqFile:
    file_name: str
    entries: list[FaqEntry]

    @property
    def question_count(self) -> int:
        return sum(len(entry.questions) for entry in self.entries)


class FaqService:
    def __init__(
        self,
        catalog: KbCatalog,
        storage: KbStorage,
        files: FileService,
        limits: FaqLimits,
        *,
        load_limits: LoadLimits | None,
        max_upload_bytes: int,
    ) -> None:
        self._catalog = catalog
        self._storage = storage
        self._files = files
        self._limits = limits
        self._load_limits = load_limits
        self._max_upload_bytes = max_upload_bytes

    def import_file(
        self, kb_name: str, upload_name: str, stream: BinaryIO, *, file_name: str = "", replace: bool = False
    ) -> FaqFile:
        """Read the pairs of an uploaded FAQ and store them as `file_name` (default: the upload's name with
        `.faq.jsonl`); an existing FAQ of that name is replaced only with `replace` (else 409)."""
        self._catalog.require(kb_name)
        source = validate_upload_name(upload_name)
        target = faq_name(validate_upload_name(file_name or source))
        root = self._storage.staging_dir(kb_name) / uuid.uuid4().hex
        try:
            staged = stage_uploads(root, [(source, stream)], self._max_upload_bytes)[0]
            if self._load_limits is not None and staged.path.suffix.lower() in ZIP_FORMATS:
                check_zip(staged.path, source, self._load_limits)
            entries = read_pairs(staged.path, source, self._limits)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        return self._store(kb_name, target, entries, replace=replace)

    def list(self, kb_name: str, file_name: str = "") -> list[FaqFile]:
        """The KB's FAQs (or the one named), with their entries as stored."""
        names = [file_name] if file_name else [name for name in self._files.list_files(kb_name) if is_faq(name)]
        return [self._read(kb_name, name) for name in names]

    def update(self, kb_name: str, file_name: str, entries: Sequence[FaqEntry]) -> FaqFile:
        """Replace the entries of an existing FAQ (an entry without an id gets the next free number)."""
        self._read(kb_name, file_name)  # it must exist and be a FAQ
        return self._store(kb_name, file_name, _numbered(entries), replace=True)

    def _read(self, kb_name: str, file_name: str) -> FaqFile:
        kb = self._catalog.require(kb_name)
        if not is_faq(file_name) or not self._catalog.is_registered(kb, file_name):
            raise FileNotInKnowledgeBase(
                f"{file_name} is not a FAQ of {kb_name!r}; list them with /knowledge_base/list_faq"
            )
        path = self._storage.content_file(kb_name, file_name)
        if not path.is_file():
            raise FileNotInKnowledgeBase(f"{file_name} is registered in {kb_name!r} but gone from its content folder")
        return FaqFile(file_name, read_stored(path, file_name))

    def _store(self, kb_name: str, file_name: str, entries: Sequence[FaqEntry], *, replace: bool) -> FaqFile:
        entries = checked(entries, self._limits, file_name)
        upload = (file_name, io.BytesIO(dump_entries(entries)))
        failed = self._files.upload(kb_name, [upload], UploadOptions(override=replace))
        error: ZhikuError | None = failed.get(file_name)
        if error is not None:
            raise error
        return FaqFile(file_name, list(entries))


def _numbered(entries: Sequence[FaqEntry]) -> list[FaqEntry]:
    """Entries with an id each: the ones given are kept, the others numbered past the highest number in use."""
    numbers = [int(entry.id) for entry in entries if entry.id.isdigit()]
    next_number = max(numbers, default=0) + 1
    result = []
    for entry in entries:
        if entry.id:
            result.append(entry)
        else:
            result.append(FaqEntry(str(next_number), entry.questions, entry.answer))
            next_number += 1
    if not result:
        raise InvalidFaq("no entries given; to remove a FAQ, delete its file with /knowledge_base/delete_docs")
    return result
