"""Fine-tuning as a background run: start one on an uploaded JSONL file, follow its progress and loss, cancel it."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Path, UploadFile

from server.api.deps import Finetune
from server.api.envelope import Envelope
from server.api.schemas import FinetuneRunOut, Reply

router = APIRouter(prefix="/llm_model/finetune", tags=["Fine-tuning"])

RunName = Annotated[str, Path(min_length=1, max_length=64, description="the run's name (the new model's name)")]


@router.post(
    "",
    summary="Start (or resume) a LoRA / prefix-tuning run on a JSONL file (ADGEN or OpenAI chat format)",
    response_model=Reply[FinetuneRunOut],
)
def start_run(
    runs: Finetune,
    data: Annotated[UploadFile, File(description='JSONL: {"content", "summary"} or {"messages": [...]} per line')],
    model_name: Annotated[str, Form(description="the base: a local (engine: transformers) model")],
    method: Annotated[Literal["lora", "ptuning"], Form()] = "lora",
    name: Annotated[str | None, Form(description="the new model's name (default <model_name>-<method>)")] = None,
    steps: Annotated[int, Form(ge=1, le=1_000_000)] = 200,
    batch_size: Annotated[int, Form(ge=1, le=1024)] = 4,
    learning_rate: Annotated[float | None, Form(gt=0, le=1)] = None,
    val_fraction: Annotated[float, Form(ge=0, lt=1)] = 0.1,
    eval_every: Annotated[int, Form(ge=1)] = 50,
    save_every: Annotated[int, Form(ge=1)] = 50,
    quantization: Annotated[Literal["none", "4bit"], Form()] = "none",
) -> Envelope:
    argv = ["--model", model_name, "--method", method, "--steps", str(steps), "--batch-size", str(batch_size),
            "--val-fraction", str(val_fraction), "--eval-every", str(eval_every), "--save-every", str(save_every),
            "--quantization", quantization]  # fmt: skip
    argv += ["--name", name] if name else []
    argv += ["--lr", str(learning_rate)] if learning_rate is not None else []
    view = runs.start(data.file.read(), argv)
    return Envelope(asdict(view), f"run {view.name} started")


@router.get("", summary="Every fine-tuning run, by name", response_model=Reply[list[FinetuneRunOut]])
def list_runs(runs: Finetune) -> Envelope:
    return Envelope([asdict(view) for view in runs.views()])


@router.get(
    "/{name}", summary="One run: state, steps, loss curve, validation loss", response_model=Reply[FinetuneRunOut]
)
def get_run(runs: Finetune, name: RunName) -> Envelope:
    return Envelope(asdict(runs.view(name)))


@router.post(
    "/{name}/cancel",
    summary="Stop a running run; its checkpoints stay (start it again to resume)",
    response_model=Reply[FinetuneRunOut],
)
def cancel_run(runs: Finetune, name: RunName) -> Envelope:
    return Envelope(asdict(runs.cancel(name)), f"run {name} cancelled")
