"""ASGI guards that answer before a request's body is read: the API key, then the body size.

Both run outside FastAPI's routing, so a request without the key is refused before a byte of its body is read,
and a body over the limit is cut off while it streams in, whether or not it declared a Content-Length.
"""

from __future__ import annotations

import json
import secrets

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.api.envelope import Envelope, openai_error

OPEN_PATHS = frozenset({"/", "/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})


def key_matches(authorization: str | None, expected: str) -> bool:
    scheme, _, token = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(token.strip().encode(), expected.encode())


class ApiKeyGuard:
    """With an API key set, every path but the open ones needs `Authorization: Bearer <key>` (401 otherwise)."""

    def __init__(self, app: ASGIApp, key: str | None) -> None:
        self.app = app
        self.key = key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.key is not None and scope["path"] not in OPEN_PATHS:
            headers = dict(scope["headers"])
            authorization = headers.get(b"authorization", b"").decode("latin-1")
            if scope["method"] != "OPTIONS" and not key_matches(authorization, self.key):
                message = "missing or wrong API key: send the header 'Authorization: Bearer <api.api_key>'"
                refusal = openai_error(401, message, "Unauthorized") if scope["path"].startswith("/v1/") else None
                await (refusal or Envelope(None, message, 401))(scope, receive, send)
                return
        await self.app(scope, receive, send)


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
