"""Fine-tuned models: every finished run's adapter folder (with its manifest) is a model entry.

The worker and the API both list `<finetune.dir>/*/adapter/zhiku_adapter.json`, so a run that finishes is served
(and shown in the Web UI) without a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from configs.settings import LlmModelConfig
from server.llm.adapters import MANIFEST, read_manifest

logger = logging.getLogger(__name__)


def tuned_models(folder: Path, configs: Mapping[str, LlmModelConfig]) -> dict[str, LlmModelConfig]:
    """Each finished run under `folder` as a model entry: its base's settings with the adapter on top."""
    found: dict[str, LlmModelConfig] = {}
    if not folder.is_dir():
        return found
    for manifest_path in sorted(folder.glob(f"*/adapter/{MANIFEST}")):
        manifest = read_manifest(manifest_path.parent)
        if manifest is None or manifest.name in configs:
            continue
        base = configs.get(manifest.base)
        if base is None or base.engine != "transformers":
            logger.warning("adapter %s: base model %r is not a local model in llm_models", manifest.name, manifest.base)
            continue
        found[manifest.name] = base.model_copy(update={"adapter": str(manifest_path.parent)})
    return found
