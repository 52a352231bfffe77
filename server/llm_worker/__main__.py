"""`python -m server.llm_worker [--host H] [--port P] [-m NAME ...]`: load local chat models, then serve them.

Serves every `engine: transformers` entry of `llm_models`, or only those named with -m. Models load before the
server answers /health; a model that cannot load stops the worker with exit status 1 and a message naming it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from typing import TYPE_CHECKING

import uvicorn

from configs import Settings, load_settings
from server.errors import ConfigError, ModelLoadError
from server.llm.spec import ModelSpec, check_folder

if TYPE_CHECKING:
    from server.llm.generation import ChatModel

logger = logging.getLogger("zhiku.llm_worker")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m server.llm_worker", description="Serve local chat models.")
    parser.add_argument("--host", help="address to bind (default: llm_worker.host in the settings)")
    parser.add_argument("--port", type=int, help="port (default: llm_worker.port in the settings)")
    parser.add_argument(
        "-m", "--model", dest="models", nargs="+", action="extend", metavar="NAME",
        help="llm_models entries to serve (default: every engine: transformers entry)",
    )  # fmt: skip
    return parser


def model_specs(settings: Settings, names: list[str] | None) -> list[ModelSpec]:
    """The specs to load; ConfigError for a name that is unknown or not a local (transformers) model."""
    local = {name: config for name, config in settings.llm_models.items() if config.engine == "transformers"}
    for name in names or []:
        if name not in settings.llm_models:
            raise ConfigError(f"-m {name}: no such entry in llm_models ({', '.join(settings.llm_models) or 'none'})")
        if name not in local:
            raise ConfigError(f"-m {name}: engine is openai, which the worker does not serve; name a local model")
    chosen = names or list(local)
    if not chosen:
        raise ConfigError("no llm_models entry has engine: transformers; there is nothing for the worker to serve")
    return [_spec(name, settings) for name in dict.fromkeys(chosen)]


def _spec(name: str, settings: Settings) -> ModelSpec:
    config = settings.llm_models[name]
    return ModelSpec(
        name=name,
        path=str(config.path),
        device=config.device,
        dtype=config.dtype,
        quantization=config.quantization,
        adapter=config.adapter,
        trust_remote_code=config.trust_remote_code,
        context_length=config.context_length,
        max_new_tokens=config.max_new_tokens,
    )


def load_models(specs: list[ModelSpec]) -> list[ChatModel]:
    """Check every folder first (a wrong path fails before torch is imported), then load each model."""
    for spec in specs:
        check_folder(spec)
    from server.llm.loading import load_chat_model

    return [load_chat_model(spec) for spec in specs]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        specs = model_specs(settings, args.models)
    except ConfigError as error:
        sys.stderr.write(f"{error.message}\n")
        return 2
    # Not server.bootstrap.configure_logging: importing bootstrap pulls in the database and chat stacks.
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local folders only: never reach a model hub
    started = time.monotonic()
    try:
        models = load_models(specs)
    except ModelLoadError as error:
        sys.stderr.write(f"LLM worker: {error.message}\n")
        return 1
    from server.llm_worker.app import create_worker_app

    host = args.host or settings.llm_worker.host
    port = args.port or settings.llm_worker.port
    names = ", ".join(spec.name for spec in specs)
    logger.info("loaded %s in %.1f s; serving on http://%s:%d", names, time.monotonic() - started, host, port)
    uvicorn.run(create_worker_app(models), host=host, port=port, log_level=settings.log_level.lower())
    return 0


if __name__ == "__main__":
    sys.exit(main())
