"""Per-KB API keys, for the admin: create (the secret is shown once), list, revoke."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import Field

from server.api.deps import Keys
from server.api.envelope import Envelope
from server.api.fields import RequestBody
from server.api.schemas import Reply
from server.auth.keys import KeyView, NewKey
from server.auth.principal import Right

router = APIRouter(prefix="/api_keys", tags=["API Keys"])


class CreateKey(RequestBody):
    name: str = Field("", max_length=128, description="what the key is for, e.g. who holds it")
    knowledge_bases: list[str] = Field(min_length=1, max_length=1000, examples=[["samples"]])
    right: Right = Field(description="read: search, chat, download; write: also upload, delete, edit, rebuild")
    expires_at: datetime | None = Field(None, description="ISO 8601; none: until revoked")


@router.post(
    "",
    summary="Create a key scoped to some knowledge bases; its secret is in this answer only",
    status_code=201,
    response_model=Reply[NewKey],
)
def create_key(keys: Keys, body: CreateKey) -> Envelope:
    new = keys.create(body.name, body.knowledge_bases, body.right, body.expires_at)
    return Envelope(new, "created: keep data.key now, it is not shown again", 201)


@router.get("", summary="Every key, without its secret", response_model=Reply[list[KeyView]])
def list_keys(keys: Keys) -> Envelope:
    return Envelope(keys.list())


@router.post("/{key_id}/revoke", summary="Revoke a key: it stops working at once", response_model=Reply[KeyView])
def revoke_key(keys: Keys, key_id: Annotated[str, Path(min_length=1, max_length=64)]) -> Envelope:
    return Envelope(keys.revoke(key_id), "revoked")
