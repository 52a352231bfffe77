"""How much memory a model will take before it is loaded, how much room the worker has, and giving it back.

Estimates come from the weight files on disk, scaled from the dtype they were saved in to the dtype they load in
(and by the quantization): cheap, known before any memory is taken, and close enough to decide what to unload.
"""

from __future__ import annotations

import gc
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from server.llm.spec import ModelSpec

Pool = Literal["gpu", "cpu"]
GIB = 1024**3
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
_ELEMENT_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int8": 1}
_QUANTIZED = {"none": 1.0, "8bit": 0.55, "4bit": 0.3}  # embeddings and norms stay in 16 bits


@dataclass(frozen=True)
class MemoryBudget:
    """Bytes the worker may fill with models on the GPU and in RAM."""

    gpu_bytes: int
    cpu_bytes: int

    def of(self, pool: Pool) -> int:
        return self.gpu_bytes if pool == "gpu" else self.cpu_bytes

    def describe(self, pool: Pool) -> str:
        key = "gpu_memory_gb" if pool == "gpu" else "cpu_memory_gb"
        return f"{self.of(pool) / GIB:.2f} GiB (llm_worker.{key})"


def pool_of(device: str) -> Pool:
    return "gpu" if device.startswith("cuda") else "cpu"


def default_budget(gpu_gb: float | None, cpu_gb: float | None) -> MemoryBudget:
    """The configured budgets; a missing one is 90% of the first GPU's memory, or half of the machine's RAM."""
    gpu = int(gpu_gb * GIB) if gpu_gb is not None else int(0.9 * _gpu_total())
    cpu = int(cpu_gb * GIB) if cpu_gb is not None else _ram_total() // 2
    return MemoryBudget(gpu_bytes=gpu, cpu_bytes=cpu)


def _gpu_total() -> int:
    import torch

    if not torch.cuda.is_available():
        return 0
    return int(torch.cuda.get_device_properties(0).total_memory)


def _ram_total() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _weight_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.iterdir() if path.name.endswith(_WEIGHT_SUFFIXES))


def _saved_element_bytes(folder: Path) -> int:
    try:
        config: dict[str, Any] = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 4
    saved = config.get("torch_dtype") or config.get("dtype") or "float32"
    return _ELEMENT_BYTES.get(str(saved), 4)


def estimate_bytes(spec: ModelSpec, dtype_name: str) -> int:
    """Memory the model of `spec` will take when loaded in `dtype_name`, adapter included."""
    folder = Path(spec.path)
    scale = _ELEMENT_BYTES.get(dtype_name, 4) / _saved_element_bytes(folder)
    size = _weight_bytes(folder) * scale * _QUANTIZED[spec.quantization]
    if spec.adapter and Path(spec.adapter).is_dir():
        size += _weight_bytes(Path(spec.adapter))
    return int(size)


def release_memory() -> None:
    """Give freed tensors back: collect reference cycles, then return CUDA's cached blocks to the driver."""
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
