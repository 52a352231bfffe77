"""Form defaults: what the local settings say, updated with what the API's /server/configs reports."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from webui_pages.api_types import UiDefaults

# UiDefaults field → the names /server/configs may use for it (ours first, then Chatchat 0.2's).
_CONFIG_KEYS: dict[str, tuple[str, ...]] = {
    "vs_types": ("vs_types", "vector_store_types"),
    "default_vs_type": ("default_vs_type", "DEFAULT_VS_TYPE"),
    "embed_models": ("embed_models",),
    "default_embed_model": ("default_embed_model", "EMBEDDING_MODEL"),
    "chunk_size": ("chunk_size", "CHUNK_SIZE"),
    "chunk_overlap": ("chunk_overlap", "OVERLAP_SIZE"),
    "zh_title_enhance": ("zh_title_enhance", "ZH_TITLE_ENHANCE"),
    "top_k": ("top_k", "VECTOR_SEARCH_TOP_K"),
    "score_threshold": ("score_threshold",),  # 0.2's SCORE_THRESHOLD was a distance: not the same thing
    "search_mode": ("search_mode",),
    "temperature": ("temperature", "TEMPERATURE"),
    "history_len": ("history_len", "HISTORY_LEN"),
    "default_llm": ("default_llm",),
    "file_types": ("file_types", "supported_exts"),
    "prompt_templates": ("prompt_templates",),
}


def _names(value: Any) -> tuple[str, ...]:
    """A list of names, or the keys of a mapping (e.g. embed_models as {name: config})."""
    if isinstance(value, Mapping):
        return tuple(str(key) for key in value)
    return tuple(str(item).lstrip(".") for item in value)


def _convert(field_name: str, value: Any, current: Any) -> Any:
    if field_name in ("vs_types", "embed_models", "file_types"):
        return _names(value)
    if field_name == "prompt_templates":
        return {str(kind): _names(names) for kind, names in dict(value).items()}
    if isinstance(current, bool):
        return bool(value)
    return type(current)(value)


def merge_server_configs(base: UiDefaults, configs: Mapping[str, Any]) -> UiDefaults:
    """`base` with every value /server/configs sent for it (keys it does not send keep the local value)."""
    changes: dict[str, Any] = {}
    for field_name, keys in _CONFIG_KEYS.items():
        for key in keys:
            if configs.get(key) not in (None, "", [], {}):
                changes[field_name] = _convert(field_name, configs[key], getattr(base, field_name))
                break
    return dataclasses.replace(base, **changes)
