"""ASGI guards that answer before a request's body is read (the API key, then the body size), and the audit trail.

Both run outside FastAPI's routing, so a request without the key is refused before a byte of its body is read,
and a body over the limit is cut off while it streams in, whether or not it declared a Content-Length.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.api.envelope import Envelope, openai_error
from server.auth.keys import SECRET_PREFIX
from server.auth.principal import ADMIN, ANONYMOUS, Principal
from server.errors import Unauthorized

OPEN_PATHS = frozenset({"/", "/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
ANONYMOUS_OPEN = Principal("anonymous", frozenset(), "read")
"""Who calls an open path without a key: reaches no knowledge base (only /health and the docs are open)."""


def bearer_token(scope: Scope) -> str | None:
    authorization = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def key_matches(token: str, expected: str) -> bool:
    return secrets.compare_digest(token.encode("utf-8", "replace"), expected.encode("utf-8"))


Authenticate = Callable[[str], Principal]
"""A scoped key's principal (server.auth.keys.KeyService.authenticate); raises Unauthorized."""


class ApiKeyGuard:
    """Tells who is calling, before a byte of the body is read, and puts it in the request's state.

    With no API key set everyone is ANONYMOUS and may do everything. With one, every path but the open ones needs
    `Authorization: Bearer <key>`: the admin key, or a scoped key the admin issued (401 otherwise). What a scoped
    key may do is decided per route by server.api.access.authorize."""

    def __init__(self, app: ASGIApp, key: str | None, authenticate: Authenticate) -> None:
        self.app = app
        self.key = key
        self._authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            principal = await self._principal(scope)
        except Unauthorized as refusal:
            await self._refuse(scope, refusal.message)(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)

    async def _principal(self, scope: Scope) -> Principal:
        if self.key is None:
            return ANONYMOUS
        if scope["path"] in OPEN_PATHS or scope["method"] == "OPTIONS":
            return ANONYMOUS_OPEN
        token = bearer_token(scope)
        if token is not None and key_matches(token, self.key):
            return ADMIN
        if token is not None and token.startswith(SECRET_PREFIX):
            return await run_in_threadpool(self._authenticate, token)
        raise Unauthorized("missing or wrong API key: send the header 'Authorization: Bearer <key>'")

    @staticmethod
    def _refuse(scope: Scope, message: str) -> ASGIApp:
        if scope["path"].startswith("/v1/"):
            return openai_error(401, message, "Unauthorized")
        return Envelope(None, message, 401)


class HidePaths:
    """Error answers never show where things are on the server: the data dir and temp dir are replaced by labels.

    The messages are written to name files as users know them; this catches what a library's message let through
    (an OSError's file name, a converter's temp folder). Only error answers (status 400 and up) are rewritten:
    others may quote a document's own text."""

    def __init__(self, app: ASGIApp, roots: dict[str, str]) -> None:
        self.app = app
        pairs = [(path, label) for path, label in roots.items() if len(path) > 1]
        self._pairs = sorted(pairs, key=lambda pair: -len(pair[0]))  # the longest first: /tmp/x before /tmp

    def hide(self, body: bytes) -> bytes:
        text = body.decode("utf-8", errors="replace")
        for path, label in self._pairs:
            text = text.replace(json.dumps(path, ensure_ascii=False)[1:-1], label).replace(path, label)
        return text.encode("utf-8")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: list[Message] = []

        async def rewriting(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] >= 400:
                held.append(message)  # its length changes with the body: sent with it
                return
            if held and message["type"] == "http.response.body":
                held.append(message)
                if message.get("more_body"):
                    return
                await self._send_hidden(held, send)
                held.clear()
                return
            await send(message)

        await self.app(scope, receive, rewriting)

    async def _send_hidden(self, held: list[Message], send: Send) -> None:
        start, parts = held[0], held[1:]
        body = self.hide(b"".join(part.get("body", b"") for part in parts))
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class BodyTooLarge(HTTPException):
    """Raised into the app while it reads a body that has passed the limit (FastAPI passes HTTPExceptions on)."""


class BodyLimit:
    """Refuses a body over `limit` bytes: at once when its Content-Length says so, else as soon as it passes."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    def _message(self) -> str:
        megabytes = self.limit // (1024 * 1024)
        return f"request body exceeds {megabytes} MB (api.max_upload_mb); send fewer or smaller files"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await Envelope(None, self._message(), 413)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(413, self._message())
            return message

        await self.app(scope, counted, send)
