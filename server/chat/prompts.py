"""Prompt templates: `{{ name }}` placeholders filled per chat type, loaded once and checked at start-up."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import yaml

from server.errors import ConfigError, PromptNotFound

PLACEHOLDERS: dict[str, frozenset[str]] = {
    "llm_chat": frozenset({"input"}),
    "knowledge_base_chat": frozenset({"context", "question"}),
    "file_chat": frozenset({"context", "question"}),
    "empty": frozenset({"question"}),
    "search_engine_chat": frozenset({"context", "question"}),
    "completion": frozenset({"input"}),
    "agent_chat": frozenset({"input"}),
    "summary_map": frozenset({"text", "description"}),
    "summary_reduce": frozenset({"text", "description"}),
    "rewrite": frozenset({"history", "question"}),
}
"""The prompt types and the placeholders each may use."""

_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


class PromptTemplates:
    """Templates by type and name; every type has a `default`."""

    def __init__(self, templates: Mapping[str, Mapping[str, str]], *, source: str = "prompt templates") -> None:
        self._templates = {kind: dict(names) for kind, names in templates.items()}
        _check(self._templates, source)

    def types(self) -> list[str]:
        return list(PLACEHOLDERS)

    def names(self, kind: str) -> list[str]:
        return list(self._require_type(kind))

    def texts(self) -> dict[str, dict[str, str]]:
        """Every template's text by type and name."""
        return {kind: dict(self._templates[kind]) for kind in self.types()}

    def get(self, kind: str, name: str = "default") -> str:
        templates = self._require_type(kind)
        if name not in templates:
            raise PromptNotFound(f"no {kind} prompt named {name!r}; available: {', '.join(templates)}")
        return templates[name]

    def render(self, kind: str, name: str, **values: str) -> str:
        template = self.get(kind, name or "default")
        return _PLACEHOLDER.sub(lambda match: values.get(match.group(1), ""), template)

    def _require_type(self, kind: str) -> dict[str, str]:
        if kind not in self._templates:
            raise PromptNotFound(f"unknown prompt type {kind!r}; use one of {', '.join(PLACEHOLDERS)}")
        return self._templates[kind]


def _check(templates: Mapping[str, Mapping[str, str]], source: str) -> None:
    for kind in PLACEHOLDERS:
        names = templates.get(kind)
        if not names or "default" not in names:
            raise ConfigError(f"{source}: prompt type {kind!r} needs a template named 'default'")
    for kind, names in templates.items():
        if kind not in PLACEHOLDERS:
            raise ConfigError(f"{source}: unknown prompt type {kind!r}; use {', '.join(PLACEHOLDERS)}")
        for name, text in names.items():
            if not isinstance(text, str):
                raise ConfigError(f"{source}: {kind}.{name} must be a string")
            unknown = set(_PLACEHOLDER.findall(text)) - PLACEHOLDERS[kind]
            if unknown:
                raise ConfigError(
                    f"{source}: {kind}.{name} uses {{{{ {sorted(unknown)[0]} }}}}; "
                    f"{kind} templates may use {', '.join(sorted(PLACEHOLDERS[kind]))}"
                )


def load_prompt_templates(path: Path) -> PromptTemplates:
    """Read the YAML file of templates; raises ConfigError naming the file and the problem."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read prompt templates from {path}: {error}") from error
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ConfigError(f"{path}: expected one mapping of template names per prompt type")
    return PromptTemplates(data, source=str(path))
