"""A run's progress, as JSON lines appended to `<run>/progress.jsonl` by the training process and read by the API.

Events: start (max_steps, resumed_from), step (step, loss), eval (step, eval_loss), checkpoint (step), done
(adapter), failed (error), cancelled (written by the API that stopped it). A resumed run repeats the steps after
its last checkpoint; the last entry of a step wins.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROGRESS_FILE = "progress.jsonl"


class ProgressLog:
    """Appends events, one line each, flushed at once so a reader (or a kill -9) never sees half a line."""

    def __init__(self, folder: Path) -> None:
        self._path = folder / PROGRESS_FILE

    def write(self, event: str, **values: Any) -> None:
        line = json.dumps({"event": event, "time": round(time.time(), 3), **values}, ensure_ascii=False)
        with self._path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")


@dataclass
class Progress:
    """A run's state as its log tells it."""

    state: str = "pending"  # pending, running, done, failed, cancelled
    step: int = 0
    max_steps: int = 0
    resumed_from: int = 0
    loss: dict[int, float] = field(default_factory=dict)
    eval_loss: dict[int, float] = field(default_factory=dict)
    checkpoint: int = 0
    error: str = ""
    steps_per_s: float = 0.0
    adapter: str = ""


def _apply(progress: Progress, event: dict[str, Any], started: list[float]) -> None:
    kind = event.get("event")
    if kind == "start":
        progress.state, progress.max_steps = "running", int(event["max_steps"])
        progress.resumed_from = int(event.get("resumed_from", 0))
        started[:] = [float(event["time"]), float(progress.resumed_from)]
    elif kind == "step":
        progress.step = int(event["step"])
        progress.loss[progress.step] = float(event["loss"])
        elapsed = float(event["time"]) - started[0] if started else 0.0
        if elapsed > 0:
            progress.steps_per_s = round((progress.step - started[1]) / elapsed, 2)
    elif kind == "eval":
        progress.eval_loss[int(event["step"])] = float(event["eval_loss"])
    elif kind == "checkpoint":
        progress.checkpoint = int(event["step"])
    elif kind == "done":
        progress.state, progress.adapter = "done", str(event.get("adapter", ""))
    elif kind == "failed":
        progress.state, progress.error = "failed", str(event.get("error", ""))
    elif kind == "cancelled":
        progress.state = "cancelled"


def read_progress(folder: Path) -> Progress:
    progress = Progress()
    started: list[float] = []
    try:
        lines = (folder / PROGRESS_FILE).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return progress
    for line in lines:
        try:
            _apply(progress, json.loads(line), started)
        except (ValueError, KeyError, TypeError):
            continue  # a line cut by a crash mid-write
    return progress
