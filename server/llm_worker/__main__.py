"""`python -m server.llm_worker [--host H] [--port P] [-m NAME ...]`: serve local chat models, loaded on demand.

Serves every `engine: transformers` entry of `llm_models` (or only those named with -m) and every fine-tuned
adapter registered under finetune.dir. No model loads before the server answers: each loads on its first request,
on POST /models/{name}/load, or at start-up when named in llm_worker.preload; the memory budget
(llm_worker.gpu_memory_gb / cpu_memory_gb) decides how many stay loaded, least recently used unloaded first.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from functools import partial

import uvicorn

from configs import Settings, load_settings
from server.errors import ConfigError, ModelLoadError, ModelTooLarge
from server.finetune.registry import tuned_models
from server.llm.memory import default_budget
from server.llm.pool import ModelPool
from server.llm.spec import ModelSpec

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


def check_names(settings: Settings, names: list[str] | None) -> None:
    """ConfigError for a name that is unknown or not a local (transformers) model, or when there is none."""
    for name in names or []:
        if name not in settings.llm_models:
            raise ConfigError(f"-m {name}: no such entry in llm_models ({', '.join(settings.llm_models) or 'none'})")
        if settings.llm_models[name].engine != "transformers":
            raise ConfigError(f"-m {name}: engine is openai, which the worker does not serve; name a local model")
    if not any(config.engine == "transformers" for config in settings.llm_models.values()):
        raise ConfigError("no llm_models entry has engine: transformers; there is nothing for the worker to serve")
    for name in settings.llm_worker.preload:
        if settings.llm_models.get(name) is None or settings.llm_models[name].engine != "transformers":
            raise ConfigError(f"llm_worker.preload: {name!r} is not a local (engine: transformers) model in llm_models")


def model_specs(settings: Settings, names: list[str] | None) -> dict[str, ModelSpec]:
    """The models served: the chosen local entries, and the fine-tuned adapters whose base is one of them."""
    local = {name: c for name, c in settings.llm_models.items() if c.engine == "transformers"}
    chosen = {name: local[name] for name in names} if names else local
    tuned = tuned_models(settings.finetune.resolved_dir(settings.data_dir), chosen)
    return {name: _spec(name, config) for name, config in {**chosen, **tuned}.items()}


def _spec(name: str, config: object) -> ModelSpec:
    from configs.settings import LlmModelConfig

    assert isinstance(config, LlmModelConfig)
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


def make_pool(settings: Settings, names: list[str] | None) -> ModelPool:
    from server.llm.loading import load_chat_model

    budget = default_budget(settings.llm_worker.gpu_memory_gb, settings.llm_worker.cpu_memory_gb)
    return ModelPool(partial(model_specs, settings, names), budget, load_chat_model)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        check_names(settings, args.models)
    except ConfigError as error:
        sys.stderr.write(f"{error.message}\n")
        return 2
    # Not server.bootstrap.configure_logging: importing bootstrap pulls in the database and chat stacks.
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local folders only: never reach a model hub
    try:
        make_pool(settings, args.models).check_all()
    except ModelTooLarge as error:
        sys.stderr.write(f"LLM worker: {error.message}\n")
        return 2
    except ModelLoadError as error:
        sys.stderr.write(f"LLM worker: {error.message}\n")
        return 1
    from server.llm_worker.app import create_worker_app

    host = args.host or settings.llm_worker.host
    port = args.port or settings.llm_worker.port
    logger.info("serving on http://%s:%d; models load on first use", host, port)
    app = create_worker_app(partial(make_pool, settings, args.models), settings.llm_worker.preload)
    uvicorn.run(app, host=host, port=port, log_level=settings.log_level.lower())
    return 0


if __name__ == "__main__":
    sys.exit(main())
