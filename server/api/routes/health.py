"""Liveness and the root redirect."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse

from server import __version__
from server.api.schemas import HealthOut

router = APIRouter(tags=["Server"])


@router.get("/", include_in_schema=False)
def root() -> RedirectResponse:
    return RedirectResponse("/docs")


@router.get("/health", summary="Liveness check (no API key needed)", response_model=HealthOut)
def health() -> HealthOut:
    return HealthOut(version=__version__)
