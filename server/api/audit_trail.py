"""Records every write request in the audit log once its answer has started: who, what, which KB, the status.

server.api.access.authorize leaves an AuditDraft in the request's state for the routes the policy counts as
writes; requests refused before that (401: no valid key) are not attributed to anyone and are not recorded.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.api.access import AuditDraft
from server.auth.audit import AuditRecord

log = logging.getLogger(__name__)

Record = Callable[[AuditRecord], None]
DETAIL_BYTES = 4096  # of an error answer: enough for its message


class AuditTrail:
    def __init__(self, app: ASGIApp, record: Record) -> None:
        self.app = app
        self._record = record

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        seen = _Seen()

        async def watching(message: Message) -> None:
            seen.note(message)
            await send(message)

        try:
            await self.app(scope, receive, watching)
        finally:
            draft = scope.get("state", {}).get("audit")
            if isinstance(draft, AuditDraft):
                await self._write(draft, seen)

    async def _write(self, draft: AuditDraft, seen: _Seen) -> None:
        entry = AuditRecord(
            actor=draft.actor, action=draft.action, kb_name=",".join(draft.kb_names), files=draft.files,
            status=seen.status, detail=seen.message(),
        )  # fmt: skip
        try:
            await run_in_threadpool(self._record, entry)
        except Exception:  # the answer has gone out; the lost entry must at least be in the server log
            log.exception("audit log: could not record %s by %s (%s)", draft.action, draft.actor, seen.status)


class _Seen:
    """The status of an answer and, for an error, the start of its body (to keep its message)."""

    def __init__(self) -> None:
        self.status = 500  # until a response starts: an exception that escaped the app
        self._body = b""

    def note(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body" and self.status >= 400 and len(self._body) < DETAIL_BYTES:
            self._body += message.get("body", b"")[: DETAIL_BYTES - len(self._body)]

    def message(self) -> str:
        if not self._body:
            return ""
        try:
            answer = json.loads(self._body)
        except ValueError:
            return self._body.decode("utf-8", "replace")
        return str(answer.get("msg", "")) if isinstance(answer, dict) else ""
