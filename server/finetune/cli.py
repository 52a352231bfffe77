"""The fine-tuning command line, and the checks made before a run starts (the API makes the same ones)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from configs import Settings
from server.errors import TrainingRefused
from server.finetune.data import Example, load_examples, split_examples
from server.finetune.options import TrainOptions, check_name, check_numbers, check_quantization, check_resumable
from server.llm.spec import ModelSpec, check_folder


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m server.finetune", description="Fine-tune a local chat model.")
    add = parser.add_argument
    add("--model", required=True, help="the base: an engine: transformers entry of llm_models")
    add("--data", required=True, type=Path, help="JSONL: ADGEN {content, summary} or OpenAI chat {messages}")
    add("--method", choices=["lora", "ptuning"], default="lora", help="lora, or ptuning (prefix tuning, P-Tuning v2)")
    add("--name", help="the new model's name (default: <model>-<method>); also the run's folder")
    add("--steps", type=int, default=200, help="optimizer steps in all (default 200)")
    add("--batch-size", type=int, default=4)
    add("--lr", type=float, help="learning rate (default 2e-4 for lora, 2e-2 for ptuning)")
    add("--val-fraction", type=float, default=0.1, help="share of examples held out for validation (0: none)")
    add("--eval-every", type=int, default=50, help="steps between validation losses")
    add("--save-every", type=int, default=50, help="steps between checkpoints (what a restart resumes from)")
    add("--lora-r", type=int, default=8)
    add("--lora-alpha", type=int, default=16)
    add("--prefix-tokens", type=int, default=16, help="virtual tokens of prefix tuning (ChatGLM's PRE_SEQ_LEN)")
    add("--max-length", type=int, default=512, help="tokens of prompt and answer together; longer ones are cut")
    add("--quantization", choices=["none", "4bit"], default="none", help="4bit: QLoRA (CUDA and bitsandbytes)")
    add("--device", default="auto", help="auto, cpu, cuda, cuda:1")
    add("--seed", type=int, default=0)
    return parser


def build_options(args: argparse.Namespace, settings: Settings) -> TrainOptions:
    """TrainOptions from the command line; TrainingRefused when the model is not local or a value is wrong."""
    config = settings.llm_models.get(args.model)
    if config is None:
        known = ", ".join(n for n, c in settings.llm_models.items() if c.engine == "transformers") or "none"
        raise TrainingRefused(f"--model {args.model!r} is not in llm_models; local models: {known}")
    if config.engine != "transformers" or not config.path:
        raise TrainingRefused(
            f"--model {args.model!r} is an online model (engine: openai): only local models (engine: transformers, "
            "a folder of weights) can be fine-tuned"
        )
    if config.adapter:
        raise TrainingRefused(f"--model {args.model!r} already has an adapter; train on its base model instead")
    name = args.name or f"{args.model}-{args.method}"
    check_name(name, set(settings.llm_models))
    check_folder(ModelSpec(name=args.model, path=config.path))
    options = TrainOptions(
        name=name, model=args.model, model_path=str(Path(config.path).resolve()), data=str(args.data),
        method=args.method, steps=args.steps, batch_size=args.batch_size, learning_rate=args.lr,
        val_fraction=args.val_fraction, eval_every=args.eval_every, save_every=args.save_every,
        lora_r=args.lora_r, lora_alpha=args.lora_alpha, prefix_tokens=args.prefix_tokens,
        max_length=args.max_length, quantization=args.quantization, device=args.device, seed=args.seed,
        trust_remote_code=config.trust_remote_code,
    )  # fmt: skip
    check_numbers(options)
    return options


@dataclass(frozen=True)
class PreparedRun:
    options: TrainOptions
    folder: Path
    train_set: list[Example]
    val_set: list[Example]


def prepare(args: argparse.Namespace, settings: Settings) -> PreparedRun:
    """Every check before training: options, model, dataset (each broken line), resumability, 4-bit support."""
    options = build_options(args, settings)
    _, examples = load_examples(Path(args.data))
    train_set, val_set = split_examples(examples, options.val_fraction, options.seed)
    folder = settings.finetune.resolved_dir(settings.data_dir) / options.name
    check_resumable(folder, options)
    check_quantization(options)
    return PreparedRun(options, folder, train_set, val_set)
