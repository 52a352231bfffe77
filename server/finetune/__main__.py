"""`python -m server.finetune --model NAME --data FILE.jsonl [--method lora|ptuning] [--name NEW]`: train an adapter.

The base is an `engine: transformers` entry of llm_models; the run lives in <finetune.dir>/<name>/ (checkpoints,
progress.jsonl, and at the end adapter/), and running the same command again resumes from the last checkpoint.
When it finishes, model <name> (the base with the adapter) is served by the worker and listed by the API.
Exit status: 0 done, 2 refused before training (bad data or options, with the reason), 1 failed while training.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback

from configs import load_settings
from server.errors import ConfigError, ZhikuError
from server.finetune.cli import parser, prepare
from server.finetune.options import save_run
from server.finetune.progress import ProgressLog

logger = logging.getLogger("zhiku.finetune")


def _refused(message: str) -> int:
    sys.stderr.write(f"fine-tuning refused: {message}\n")
    return 2


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = load_settings()
        run = prepare(args, settings)
    except (ConfigError, ZhikuError) as error:
        return _refused(error.message)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local folders only: never reach a model hub
    options = run.options
    save_run(run.folder, options)
    from server.finetune.train import train

    logger.info("training %s: %d examples, %d held out", options.name, len(run.train_set), len(run.val_set))
    try:
        adapter = train(options, run.folder, run.train_set, run.val_set)
    except Exception as error:  # noqa: BLE001 - reported in the run's progress, for the API and the user
        ProgressLog(run.folder).write("failed", error=f"{type(error).__name__}: {error}")
        traceback.print_exc()
        return 1
    logger.info("done: model %s (base %s with the adapter in %s)", options.name, options.model, adapter)
    return 0


if __name__ == "__main__":
    sys.exit(main())
