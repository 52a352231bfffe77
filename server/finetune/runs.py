"""Fine-tuning runs started by the API: each one `python -m server.finetune` in its own process, supervised here.

The API makes every check the command line makes before it starts the process (so a bad dataset is a 422 with
line numbers, not a failed run), hands the process a settings file holding only the base model's entry, and reads
the run's progress.jsonl for the progress and the loss curve. Cancelling terminates the process; the checkpoints
stay, and starting the run again (same name) resumes it. Runs whose process is gone (the API restarted) show as
interrupted.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from configs import Settings
from server.errors import RunFinished, RunNotFound, TrainingBusy
from server.finetune.cli import parser, prepare
from server.finetune.options import RUN_FILE
from server.finetune.progress import Progress, ProgressLog, read_progress

REPO = Path(__file__).resolve().parents[2]
CURVE_POINTS = 200
_STOP_WAIT_S = 10.0


@dataclass(frozen=True)
class RunView:
    """A run as the API shows it."""

    name: str
    base_model: str
    method: str
    state: str  # running, done, failed, cancelled, interrupted
    step: int
    max_steps: int
    progress: float
    resumed_from: int
    checkpoint: int
    steps_per_s: float
    loss: list[tuple[int, float]] = field(default_factory=list)
    eval_loss: list[tuple[int, float]] = field(default_factory=list)
    error: str = ""
    model_name: str | None = None  # the served model, once done


def _curve(points: dict[int, float]) -> list[tuple[int, float]]:
    ordered = sorted(points.items())
    stride = max(1, len(ordered) // CURVE_POINTS)
    picked = ordered[::stride]
    if ordered and picked[-1] != ordered[-1]:
        picked.append(ordered[-1])
    return picked


def _run_facts(folder: Path) -> dict[str, Any]:
    try:
        facts: dict[str, Any] = yaml.safe_load((folder / RUN_FILE).read_text(encoding="utf-8"))
        return facts
    except (OSError, yaml.YAMLError):
        return {}


class FinetuneRuns:
    """Starts, follows and cancels the training processes of this API."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._folder = settings.finetune.resolved_dir(settings.data_dir)
        self._max_running = settings.finetune.max_running
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._cancelled: set[str] = set()
        self._lock = threading.Lock()  # routes run on a thread pool: one start or cancel at a time

    def _alive(self) -> list[str]:
        return [name for name, process in self._processes.items() if process.poll() is None]

    def start(self, data: bytes, argv: list[str]) -> RunView:
        """Check everything as the command line would, then start the run's process; `argv` holds no --data."""
        with self._lock:
            return self._start(data, argv)

    def _start(self, data: bytes, argv: list[str]) -> RunView:
        if len(self._alive()) >= self._max_running:
            raise TrainingBusy(
                f"{len(self._alive())} fine-tuning run(s) going ({', '.join(self._alive())}); finetune.max_running "
                f"is {self._max_running}: wait for one to end or cancel it"
            )
        staging = self._folder / ".uploads" / f"{uuid.uuid4().hex}.jsonl"
        staging.parent.mkdir(parents=True, exist_ok=True)
        staging.write_bytes(data)
        try:
            run = prepare(parser().parse_args([*argv, "--data", str(staging)]), self._settings)
        except BaseException:
            staging.unlink(missing_ok=True)
            raise
        name = run.options.name
        if name in self._alive():
            staging.unlink(missing_ok=True)
            raise TrainingBusy(f"run {name!r} is going already; follow it or cancel it")
        if read_progress(run.folder).state == "done":
            staging.unlink(missing_ok=True)
            raise TrainingBusy(f"run {name!r} is finished (model {name!r}); train under another name")
        run.folder.mkdir(parents=True, exist_ok=True)
        dataset = run.folder / "data.jsonl"
        shutil.move(staging, dataset)
        self._launch(name, run.options.model, [*argv, "--name", name, "--data", str(dataset)], run.folder)
        return self.view(name)

    def _launch(self, name: str, base: str, argv: list[str], folder: Path) -> None:
        config = folder / "settings.yaml"
        base_config = self._settings.llm_models[base].model_dump(mode="json", exclude={"api_key"})
        only_the_base = {
            "data_dir": str(self._settings.data_dir.resolve()),
            "log_level": self._settings.log_level,
            "finetune": {"dir": str(self._folder.resolve())},
            "llm_models": {base: base_config},
        }
        config.write_text(yaml.safe_dump(only_the_base, allow_unicode=True), encoding="utf-8")
        env = {**os.environ, "ZHIKU_CONFIG": str(config)}
        with (folder / "train.log").open("ab") as log:
            command = [sys.executable, "-m", "server.finetune", *argv]
            self._processes[name] = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=log)
        self._cancelled.discard(name)

    def _state(self, name: str, progress: Progress) -> tuple[str, str]:
        process = self._processes.get(name)
        if name in self._cancelled:
            return "cancelled", ""
        if process is not None and process.poll() is None:
            return "running", ""
        if progress.state in ("done", "failed", "cancelled"):
            return progress.state, progress.error
        if process is not None:
            return "failed", f"the training process exited with status {process.returncode}; see train.log"
        return "interrupted", "the training process is gone (the API restarted?); start the run again to resume it"

    def view(self, name: str) -> RunView:
        folder = self._folder / name
        if not (folder / RUN_FILE).is_file() and name not in self._processes:
            raise RunNotFound(f"no fine-tuning run {name!r}; runs: {', '.join(self.names()) or 'none'}")
        progress = read_progress(folder)
        state, error = self._state(name, progress)
        facts = _run_facts(folder)
        return RunView(
            name=name,
            base_model=str(facts.get("model", "")),
            method=str(facts.get("method", "")),
            state=state,
            step=progress.step,
            max_steps=progress.max_steps,
            progress=round(progress.step / progress.max_steps, 4) if progress.max_steps else 0.0,
            resumed_from=progress.resumed_from,
            checkpoint=progress.checkpoint,
            steps_per_s=progress.steps_per_s,
            loss=_curve(progress.loss),
            eval_loss=_curve(progress.eval_loss),
            error=error,
            model_name=name if state == "done" else None,
        )

    def names(self) -> list[str]:
        on_disk = {path.parent.name for path in self._folder.glob(f"*/{RUN_FILE}")} if self._folder.is_dir() else set()
        return sorted(on_disk | set(self._processes))

    def views(self) -> list[RunView]:
        return [self.view(name) for name in self.names()]

    def cancel(self, name: str) -> RunView:
        with self._lock:
            return self._cancel(name)

    def _cancel(self, name: str) -> RunView:
        view = self.view(name)
        process = self._processes.get(name)
        if process is None or process.poll() is not None:
            raise RunFinished(f"run {name!r} is not running (state {view.state}); nothing to cancel")
        self._stop(process)
        self._cancelled.add(name)
        ProgressLog(self._folder / name).write("cancelled")
        return self.view(name)

    @staticmethod
    def _stop(process: subprocess.Popen[bytes]) -> None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(_STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(_STOP_WAIT_S)

    def close(self) -> None:
        """Stop the runs this API started; their checkpoints stay, and starting them again resumes them."""
        for name in self._alive():
            self._stop(self._processes[name])
