"""Checkpoints of a training run: the adapter, the optimizer and the step, written whole or not at all.

Each is written to `checkpoints/step-NNNNNN.partial` and renamed when complete, so a run killed at any moment
resumes from the last complete one; leftovers of an interrupted write are removed on resume.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

KEEP = 2
_STATE = "state.json"
_OPTIMIZER = "optimizer.pt"


def _folder(run: Path) -> Path:
    return run / "checkpoints"


def save_checkpoint(run: Path, step: int, model: Any, optimizer: Any) -> Path:
    import torch

    final = _folder(run) / f"step-{step:06d}"
    partial = final.with_name(final.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    model.save_pretrained(partial)
    torch.save(optimizer.state_dict(), partial / _OPTIMIZER)
    (partial / _STATE).write_text(json.dumps({"step": step}), encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    for old in complete_checkpoints(run)[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def complete_checkpoints(run: Path) -> list[Path]:
    folder = _folder(run)
    if not folder.is_dir():
        return []
    found = [path for path in folder.glob("step-*") if not path.name.endswith(".partial")]
    return sorted(path for path in found if (path / _STATE).is_file())


def last_checkpoint(run: Path) -> tuple[Path, int] | None:
    """The newest complete checkpoint and its step, after removing any a crash left half-written."""
    for partial in _folder(run).glob("*.partial") if _folder(run).is_dir() else []:
        shutil.rmtree(partial, ignore_errors=True)
    complete = complete_checkpoints(run)
    if not complete:
        return None
    newest = complete[-1]
    step = int(json.loads((newest / _STATE).read_text(encoding="utf-8"))["step"])
    return newest, step


def load_optimizer(checkpoint: Path, optimizer: Any) -> None:
    import torch

    optimizer.load_state_dict(torch.load(checkpoint / _OPTIMIZER, weights_only=True))
