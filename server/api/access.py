"""Each route's rule (server/auth/policy.py) applied to the caller's key, and what the audit log records.

ApiKeyGuard (server/api/guards.py) has already told who is calling before the body was read and put the principal
in the request's state. `authorize` runs as a dependency, after FastAPI has read the body, so it can see which
knowledge bases a JSON or form body names without reading the body twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from server.auth.policy import WRITES, Access, access_of
from server.auth.principal import Principal
from server.db.repository import kb_not_found
from server.errors import Forbidden, InvalidInput, JobNotFound, Unauthorized
from server.jobs.registry import job_not_found

KB_FIELD = "knowledge_base_name"


@dataclass(frozen=True)
class AuditDraft:
    """What a write request is about; AuditTrail adds its status once the response has started."""

    actor: str
    action: str
    kb_names: list[str]
    files: list[str]


@dataclass(frozen=True)
class Requested:
    kb_names: list[str]
    files: list[str]


def principal_of(request: Request) -> Principal:
    """The caller ApiKeyGuard found; a request that did not pass the guard is refused, not let through."""
    principal = request.scope.get("state", {}).get("principal")
    if not isinstance(principal, Principal):
        raise Unauthorized("the request did not pass the API key check")
    return principal


Caller = Annotated[Principal, Depends(principal_of)]


async def authorize(request: Request) -> None:
    """Refuse what the caller's key may not do: 404 for a KB outside its scope, 403 for a right it lacks."""
    principal = principal_of(request)
    route: APIRoute = request.scope["route"]
    access = access_of(request.method, route.path)
    if access == "admin" and not principal.is_admin:
        raise Forbidden("this route needs the admin key (api.api_key)")
    if principal.is_admin and access not in WRITES:
        return
    asked = await _requested(request, route)
    if access in WRITES:
        action = f"{request.method} {route.path}"
        request.state.audit = AuditDraft(principal.actor, action, asked.kb_names, asked.files)
    if not principal.is_admin:
        _check_scope(principal, access, asked.kb_names, request.path_params.get("job_id"))


def _check_scope(principal: Principal, access: Access, kb_names: list[str], job_id: str | None) -> None:
    if access in ("open", "any", "admin") or (access in ("list", "read_optional") and not kb_names):
        return
    if not kb_names:
        raise InvalidInput(f"name the knowledge base ({KB_FIELD}): this key reaches only some of them")
    for name in kb_names:
        if not principal.sees(name):
            raise JobNotFound(job_not_found(job_id)) if job_id else kb_not_found(name)
        if access == "write" and not principal.may_write(name):
            raise Forbidden(f"this key may only read knowledge base {name!r}; ask the admin for a key with write")


async def _requested(request: Request, route: APIRoute) -> Requested:
    names = list(request.query_params.getlist(KB_FIELD))
    files = list(request.query_params.getlist("file_name"))
    job_id = request.path_params.get("job_id")
    if job_id is not None:
        names.append(await run_in_threadpool(request.app.state.services.jobs.kb_of, job_id))
    if route.body_field is not None:
        body = await _body(request)
        names += _strings(body, KB_FIELD)
        files += _strings(body, "file_name") + _strings(body, "file_names") + _upload_names(body)
    return Requested(names, files)


async def _body(request: Request) -> Any:
    kind = request.headers.get("content-type", "")
    if kind.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        return await request.form()  # FastAPI has read it already: this is its cached copy
    if not await request.body():
        return None
    try:
        return await request.json()
    except ValueError:  # not JSON: the route's own validation answers
        return None


def _strings(body: Any, field: str) -> list[str]:
    """The field's text values in a JSON object or a form; a bare JSON string is a KB name (delete_knowledge_base)."""
    if isinstance(body, str):
        return [body] if field == KB_FIELD else []
    if isinstance(body, FormData):
        return [value for value in body.getlist(field) if isinstance(value, str)]
    value = body.get(field) if isinstance(body, dict) else None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def _upload_names(body: Any) -> list[str]:
    if not isinstance(body, FormData):
        return []
    return [value.filename or "" for _, value in body.multi_items() if isinstance(value, UploadFile)]
