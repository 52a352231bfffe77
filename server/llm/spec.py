"""What the worker needs to know to load one chat model: plain values, no settings object."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from server.errors import ModelLoadError

DType = Literal["auto", "float32", "float16", "bfloat16"]
Quantization = Literal["none", "8bit", "4bit"]


@dataclass(frozen=True)
class ModelSpec:
    """A local transformers chat model: its folder and how to load it."""

    name: str
    path: str
    device: str = "auto"
    dtype: DType = "auto"
    quantization: Quantization = "none"
    adapter: str | None = None
    trust_remote_code: bool = False
    context_length: int = 4096
    max_new_tokens: int = 1024


def check_folder(spec: ModelSpec) -> None:
    """A cheap check before torch is imported: the model folder exists and holds a config.json."""
    if not (Path(spec.path) / "config.json").is_file():
        raise ModelLoadError(
            f"model {spec.name!r}: {spec.path} is not a model folder (no config.json); "
            "download the model there or fix `path` in llm_models"
        )
