"""PEFT adapters made by `python -m server.finetune`: a manifest beside the weights names the base model and its
shape, so an adapter put on another base is refused before any weights are read."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from server.errors import AdapterMismatch

logger = logging.getLogger(__name__)

MANIFEST = "zhiku_adapter.json"
_SHAPE_KEYS = ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")


@dataclass(frozen=True)
class AdapterManifest:
    name: str
    base: str
    method: str
    shape: dict[str, Any]


def model_shape(model_dir: Path) -> dict[str, Any]:
    """The parts of a model's config.json an adapter depends on."""
    try:
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {key: config.get(key) for key in _SHAPE_KEYS}


def write_manifest(adapter_dir: Path, manifest: AdapterManifest) -> None:
    target = adapter_dir / MANIFEST
    partial = target.with_suffix(".partial")
    partial.write_text(json.dumps(asdict(manifest), ensure_ascii=False, indent=2), encoding="utf-8")
    partial.replace(target)  # the model appears whole or not at all


def read_manifest(adapter_dir: Path) -> AdapterManifest | None:
    try:
        data = json.loads((adapter_dir / MANIFEST).read_text(encoding="utf-8"))
        return AdapterManifest(str(data["name"]), str(data["base"]), str(data["method"]), dict(data["shape"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as error:
        logger.warning("ignoring the unreadable adapter manifest in %s: %s", adapter_dir, error)
        return None


def check_adapter_base(name: str, adapter_dir: Path, base_dir: Path) -> None:
    """AdapterMismatch when the adapter's manifest says it was trained on a base of another shape."""
    manifest = read_manifest(adapter_dir)
    if manifest is None:
        return
    have, want = model_shape(base_dir), manifest.shape
    different = [key for key in _SHAPE_KEYS if want.get(key) != have.get(key)]
    if different:
        raise AdapterMismatch(
            f"model {name!r}: its adapter was trained on {manifest.base!r}, whose {', '.join(different)} differ "
            f"from the base model in {base_dir.name}; put the adapter on the model it was trained on"
        )
