"""Looking up the runner of a requested model."""

from __future__ import annotations

from fastapi import Request

from server.errors import UnknownModel
from server.llm.runner import ModelRunner


def get_runner(request: Request, name: str | None) -> ModelRunner:
    """The runner serving `name` (None: the first model); UnknownModel (404) names the served ones."""
    runners: dict[str, ModelRunner] = request.app.state.runners
    if name is None:
        return next(iter(runners.values()))
    if name not in runners:
        served = ", ".join(runners)
        raise UnknownModel(f"model {name!r} is not served by this worker; served: {served}")
    return runners[name]
