"""Errors in the OpenAI format, `{"error": {"message", "type", "code"}}`, with the matching HTTP status."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from server.errors import AdapterMismatch, ModelLoadError, ModelTooLarge, NoRoomForModel, UnknownModel, ZhikuError

logger = logging.getLogger(__name__)


def error_body(message: str, status: int, code: str) -> dict[str, dict[str, str]]:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return {"error": {"message": message, "type": kind, "code": code}}


def error_response(message: str, status: int, code: str) -> JSONResponse:
    return JSONResponse(error_body(message, status, code), status_code=status)


def _code(error: ZhikuError) -> str:
    if isinstance(error, UnknownModel):
        return "model_not_found"
    if isinstance(error, ModelTooLarge):
        return "model_too_large"
    if isinstance(error, NoRoomForModel):
        return "model_busy"
    if isinstance(error, AdapterMismatch):
        return "adapter_mismatch"
    if isinstance(error, ModelLoadError):
        return "model_load_failed"
    return "invalid_request" if error.status_code < 500 else "internal_error"


def _validation_message(error: RequestValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"] if part != "body") or "body"
        parts.append(f"{where}: {item['msg']}")
    return "invalid request: " + "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    """Every error leaves as the OpenAI error object; never a stack trace."""

    async def zhiku(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, ZhikuError)
        return error_response(error.message, error.status_code, _code(error))

    async def validation(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        return error_response(_validation_message(error), 422, "invalid_request")

    async def http(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, HTTPException)
        code = "not_found" if error.status_code == 404 else "http_error"
        return error_response(str(error.detail), error.status_code, code)

    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(f"internal error: {type(error).__name__}: {error}", 500, "internal_error")

    app.add_exception_handler(ZhikuError, zhiku)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(HTTPException, http)
    app.add_exception_handler(Exception, unexpected)
