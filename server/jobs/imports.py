"""The files of a KB import whose chunks must be embedded again, as a job: each file waits in the job's folder as
its original (if any) beside a `chunks.json` holding its registry entry and its chunks, hand edits included."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from server.jobs.registry import NewFile
from server.jobs.staging import JobFolders
from server.knowledge_base.archive import ChunkEntry, FileEntry, LoadedFile
from server.knowledge_base.ingest import PreparedFile
from server.knowledge_base.porter import prepared_from

SIDECAR = "chunks.json"


@dataclass(frozen=True)
class StagedImport:
    prepared: PreparedFile  # without vectors yet
    tags: list[str]
    enabled: bool


def stage_import(folders: JobFolders, job_id: str, files: Sequence[LoadedFile]) -> list[NewFile]:
    """Move each file's original into the job's folder and write its chunks beside it."""
    staged = []
    for index, one in enumerate(files):
        folder = folders.folder(job_id) / str(index)
        folder.mkdir(parents=True, exist_ok=True)
        original = None
        if one.original is not None:
            original = folder / one.original.name
            shutil.move(one.original, original)
        sidecar = folder / SIDECAR
        body = {
            "entry": one.entry.model_dump(mode="json"),
            "chunks": [chunk.model_dump(mode="json") for chunk in one.chunks],
            "original": original.name if original else None,
        }
        sidecar.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
        staged.append(NewFile(one.entry.file_name, folders.relative(sidecar), one.entry.size, one.entry.sha256))
    return staged


def load_staged(sidecar: Path) -> StagedImport:
    body = json.loads(sidecar.read_text(encoding="utf-8"))
    entry = FileEntry.model_validate(body["entry"])
    chunks = [ChunkEntry.model_validate(chunk) for chunk in body["chunks"]]
    original = sidecar.parent / body["original"] if body["original"] else None
    return StagedImport(prepared_from(entry, chunks, original), list(entry.tags), entry.enabled)
