"""The response envelope {"code", "msg", "data"} and the handlers that map errors onto it.

Unlike Chatchat 0.2, the HTTP status always equals `code`; error responses never carry a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from server.errors import ZhikuError

log = logging.getLogger(__name__)


class Envelope(JSONResponse):
    def __init__(
        self, data: Any = None, msg: str = "success", code: int = 200, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__({"code": code, "msg": msg, "data": jsonable_encoder(data)}, status_code=code, headers=headers)

    def render(self, content: Any) -> bytes:
        # Chinese stays readable in the body instead of \\u escapes.
        import json

        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def openai_error(status: int, message: str, kind: str) -> JSONResponse:
    """Our envelope plus {"error": {"message", "type", "code"}}, which OpenAI clients show (the /v1 routes)."""
    error = {"message": message, "type": kind, "code": status}
    return JSONResponse({"code": status, "msg": message, "data": None, "error": error}, status_code=status)


def failures_response(failed: Mapping[str, ZhikuError], total: int, ok_msg: str) -> Envelope:
    """200 when at least one file succeeded (or none were sent); otherwise the first failure's status."""
    data = {"failed_files": {name: error.message for name, error in failed.items()}}
    if not failed:
        return Envelope(data, ok_msg)
    if len(failed) < total:
        return Envelope(data, f"{len(failed)} of {total} files failed; see data.failed_files")
    first = next(iter(failed.values()))
    msg = first.message if total == 1 else f"all {total} files failed, e.g. {first.message}"
    return Envelope(data, msg, first.status_code)


def describe_validation(error: RequestValidationError) -> str:
    parts = []
    for item in error.errors():
        loc = list(item.get("loc", ()))
        if loc and loc[0] in ("body", "query", "form", "path", "header"):
            loc = loc[1:]  # only the leading source: a field may itself be named "query"
        location = ".".join(str(p) for p in loc)
        parts.append(f"{location or 'request'}: {item.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


async def _zhiku_error(_: Request, error: Exception) -> Envelope:
    assert isinstance(error, ZhikuError)
    if error.status_code >= 500:
        log.error("%s: %s", type(error).__name__, error.message)
    return Envelope(None, error.message, error.status_code)


async def _validation_error(_: Request, error: Exception) -> Envelope:
    assert isinstance(error, RequestValidationError)
    return Envelope(None, describe_validation(error), 422)


async def _http_error(_: Request, error: Exception) -> Envelope:
    assert isinstance(error, HTTPException)
    return Envelope(None, str(error.detail), error.status_code, headers=error.headers)


async def _unexpected(_: Request, error: Exception) -> Envelope:
    log.exception("unhandled error", exc_info=error)
    return Envelope(None, f"internal error ({type(error).__name__}); the server log has the details", 500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ZhikuError, _zhiku_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
