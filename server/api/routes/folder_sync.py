"""Folder sync: a knowledge base that follows its content/ folder, or a one-off look at the folder."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field

from server.api.deps import Sync
from server.api.envelope import Envelope
from server.api.fields import RequestBody
from server.api.schemas import FolderSyncOut, Reply, SyncReport

router = APIRouter(prefix="/knowledge_base", tags=["Ingestion Jobs"])


class UpdateFolderSync(RequestBody):
    knowledge_base_name: str
    sync_folder: bool = Field(description="on: new, changed and deleted files of content/ are picked up within seconds")


class SyncFolder(RequestBody):
    knowledge_base_name: str


@router.post(
    "/update_folder_sync", summary="Turn folder sync of a knowledge base on or off", response_model=Reply[FolderSyncOut]
)
def update_folder_sync(sync: Sync, body: UpdateFolderSync) -> Envelope:
    enabled = sync.set_enabled(body.knowledge_base_name, body.sync_folder)
    scan = sync.scan(body.knowledge_base_name) if enabled else None
    return Envelope({"sync_folder": enabled, "scan": scan}, "folder sync on" if enabled else "folder sync off")


@router.post(
    "/sync_folder",
    summary="Look at the content folder once: queue new and changed files, remove deleted ones",
    response_model=Reply[SyncReport],
)
def sync_folder(sync: Sync, body: SyncFolder) -> Envelope:
    report = sync.scan(body.knowledge_base_name)
    return Envelope(report, f"{len(report.queued)} files queued, {len(report.removed)} removed")
