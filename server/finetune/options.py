"""One training run's options, as the command line and the API give them, and the checks made before training."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from server.errors import TrainingRefused

Method = Literal["lora", "ptuning"]
RUN_FILE = "run.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# What must stay the same for a run to be resumed (the rest, like the step count, may change).
_FIXED = ("model", "model_path", "method", "lora_r", "lora_alpha", "prefix_tokens", "quantization", "max_length")


@dataclass(frozen=True)
class TrainOptions:
    name: str  # the new model entry, and the run's folder under finetune.dir
    model: str  # the base: an engine: transformers entry of llm_models
    model_path: str
    data: str
    method: Method = "lora"
    steps: int = 200
    batch_size: int = 4
    learning_rate: float | None = None  # None: 2e-4 for LoRA, 2e-2 for prefix tuning (ChatGLM's ptuning recipe)
    val_fraction: float = 0.1
    eval_every: int = 50
    save_every: int = 50
    lora_r: int = 8
    lora_alpha: int = 16
    prefix_tokens: int = 16
    max_length: int = 512
    quantization: Literal["none", "4bit"] = "none"
    device: str = "auto"
    seed: int = 0
    trust_remote_code: bool = False

    @property
    def lr(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return 2e-4 if self.method == "lora" else 2e-2


def check_name(name: str, taken: set[str]) -> None:
    if not _NAME.match(name):
        raise TrainingRefused(
            f"--name {name!r}: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    if name in taken:
        raise TrainingRefused(f"--name {name!r} is already a model in llm_models; pick another name")


def check_numbers(options: TrainOptions) -> None:
    checks = {
        "--steps": options.steps >= 1,
        "--batch-size": options.batch_size >= 1,
        "--eval-every": options.eval_every >= 1,
        "--save-every": options.save_every >= 1,
        "--lora-r": options.lora_r >= 1,
        "--prefix-tokens": options.prefix_tokens >= 1,
        "--max-length": options.max_length >= 8,
        "--val-fraction": 0 <= options.val_fraction < 1,
        "--lr": options.learning_rate is None or options.learning_rate > 0,
    }
    wrong = [flag for flag, fine in checks.items() if not fine]
    if wrong:
        raise TrainingRefused(f"out of range: {', '.join(wrong)} (see python -m server.finetune --help)")


def check_quantization(options: TrainOptions) -> None:
    """4-bit training (QLoRA) needs CUDA and bitsandbytes; refused before anything is loaded."""
    if options.quantization == "none":
        return
    if options.method != "lora":
        raise TrainingRefused("--quantization 4bit trains LoRA adapters only (QLoRA); use --method lora")
    import importlib.util

    import torch

    if not torch.cuda.is_available() or options.device == "cpu":
        raise TrainingRefused("--quantization 4bit (QLoRA) needs a CUDA GPU; on this machine train without it")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise TrainingRefused("--quantization 4bit needs bitsandbytes: pip install bitsandbytes")


def save_run(folder: Path, options: TrainOptions) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / RUN_FILE).write_text(json.dumps(asdict(options), ensure_ascii=False, indent=2), encoding="utf-8")


def check_resumable(folder: Path, options: TrainOptions) -> None:
    """A run folder that already exists must have been started with the same base, method and adapter shape."""
    try:
        before = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return
    except (OSError, ValueError):
        raise TrainingRefused(f"run {options.name!r}: its {RUN_FILE} is unreadable; use another --name") from None
    now = asdict(options)
    changed = [key for key in _FIXED if before.get(key) != now[key]]
    if changed:
        raise TrainingRefused(
            f"run {options.name!r} was started with other {', '.join(changed)}; resume it with the same options "
            "or train under another --name"
        )
