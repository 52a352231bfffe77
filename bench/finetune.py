"""Training speed: optimizer steps per second of LoRA and prefix tuning on the tiny random model.

    python -m bench.finetune [--steps 100] [--batch-size 4] [--device cpu|cuda] [--hidden 64] [--layers 2]

Builds the tiny Qwen2 of tests/tiny_llm.py (or a wider one with --hidden/--layers), then runs the real training
loop (server.finetune.train) in this process on a small ADGEN set and prints steps/s and the loss, first and last.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from server.finetune.data import Example
from server.finetune.options import TrainOptions
from server.finetune.progress import read_progress

ROWS = {"颜色#红色*类型#裙": "这条红色的裙子很显气质", "类型#鞋*材质#皮": "一双柔软的皮鞋", "knowledge base": "chunks"}


def run(model_dir: Path, folder: Path, method: str, args: argparse.Namespace) -> dict[str, float]:
    from server.finetune.train import train

    options = TrainOptions(
        name=f"bench-{method}", model="tiny", model_path=str(model_dir), data="", method=method,  # type: ignore[arg-type]
        steps=args.steps, batch_size=args.batch_size, val_fraction=0.0, save_every=args.steps + 1,
        device=args.device, learning_rate=1e-2 if method == "lora" else 0.2,
    )  # fmt: skip
    examples = [Example([{"role": "user", "content": q}], a) for q, a in ROWS.items()]
    run_dir = folder / options.name
    run_dir.mkdir(parents=True)
    began = time.perf_counter()
    train(options, run_dir, examples, [])
    elapsed = time.perf_counter() - began
    losses = read_progress(run_dir).loss
    events = [json.loads(line) for line in (run_dir / "progress.jsonl").read_text(encoding="utf-8").splitlines()]
    loop = next(event["steps_per_s"] for event in events if event["event"] == "done")
    return {"steps_per_s": loop, "with_loading_s": elapsed, "first_loss": losses[1], "last_loss": losses[args.steps]}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.finetune")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    args = parser.parse_args()
    from tests.tiny_llm import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_model(Path(tmp) / "tiny", hidden=args.hidden, layers=args.layers, init_range=0.2)
        for method in ("lora", "ptuning"):
            figures = run(model_dir, Path(tmp), method, args)
            shown = ", ".join(f"{key} {value:.3f}" for key, value in figures.items())
            print(f"{method}: {shown}")


if __name__ == "__main__":
    main()
