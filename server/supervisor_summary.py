"""The text `startup.py` shows once everything answers: versions, where the data is, models, URLs."""

from __future__ import annotations

import platform
from importlib import metadata

from sqlalchemy import make_url

from configs import Settings
from server import __version__
from server.supervisor_plan import Plan, remote_models


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def versions(plan: Plan) -> str:
    parts = [f"Zhiku {__version__}", f"Python {platform.python_version()}"]
    if plan.local_models:
        parts += [f"torch {package_version('torch')}", f"transformers {package_version('transformers')}"]
    if "webui" in plan.endpoints:
        parts.append(f"streamlit {package_version('streamlit')}")
    return ", ".join(parts)


def database(settings: Settings) -> str:
    return make_url(settings.sqlalchemy_url).render_as_string(hide_password=True)


def models_served(settings: Settings, plan: Plan) -> list[str]:
    lines = [f"{name} (local, LLM worker)" for name in plan.local_models]
    for name in remote_models(settings):
        base_url = settings.llm_models[name].base_url
        lines.append(f"{name} (remote, {base_url})")
    return lines


def urls(plan: Plan) -> list[tuple[str, str]]:
    """(label, URL) pairs: what the user opens; shown even in quiet mode."""
    pairs: list[tuple[str, str]] = []
    if "api" in plan.endpoints:
        api = plan.endpoints["api"].url
        pairs += [("API", api), ("API docs", f"{api}/docs")]
    if "webui" in plan.endpoints:
        pairs.append(("Web UI", plan.endpoints["webui"].url))
    if "llm_worker" in plan.endpoints:
        pairs.append(("LLM worker", plan.endpoints["llm_worker"].url))
    return pairs


def summary(settings: Settings, plan: Plan, seconds: float) -> list[str]:
    """The lines of the ready banner."""
    lines = [
        f"Zhiku is ready in {seconds:.1f} s",
        f"  versions      {versions(plan)}",
        f"  data dir      {settings.data_dir.resolve()}",
        f"  database      {database(settings)}",
        f"  vector store  {settings.kb.default_vs_type} (default), embedding model {settings.kb.default_embed_model}",
    ]
    served = models_served(settings, plan)
    lines.append(f"  chat models   {', '.join(served) if served else 'none'}")
    lines += [f"  note          {note}" for note in plan.notes]
    lines += [f"  {label:<13} {url}" for label, url in urls(plan)]
    return lines
