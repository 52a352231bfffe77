"""The configured chat models and where each one is reached (our worker or its own OpenAI-style endpoint)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from configs.settings import LlmModelConfig
from server.errors import LlmNotConfigured, UnknownModel

HOW_TO_CONFIGURE = (
    "add a model under `llm_models` in configs/settings.yaml and name it in `default_llm` — either a local "
    "folder served by our worker (engine: transformers, path: /models/Qwen2.5-1.5B-Instruct; then run "
    "python -m server.llm_worker) or any OpenAI-compatible endpoint such as vLLM, Ollama, Xinference or a hosted "
    "API (engine: openai, base_url: http://host:port/v1, model, api_key)"
)


def mask_url(url: str) -> str:
    """The URL with any password and query values hidden, safe to show in messages and logs."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"***@{host}"
    query = "&".join(f"{pair.split('=', 1)[0]}=***" for pair in parts.query.split("&") if pair) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


@dataclass(frozen=True)
class LlmEndpoint:
    """Everything needed to call one configured model."""

    name: str
    engine: str
    base_url: str
    model: str
    api_key: str | None
    context_length: int
    max_new_tokens: int

    @property
    def shown_url(self) -> str:
        return mask_url(self.base_url)


class LlmRegistry:
    """Looks up configured models by name; `worker_url` is the OpenAI base URL of our own LLM worker."""

    def __init__(
        self,
        configs: Mapping[str, LlmModelConfig],
        default: str | None,
        worker_url: str,
        extra: Callable[[], Mapping[str, LlmModelConfig]] | None = None,
    ) -> None:
        self._settings_configs = dict(configs)
        self._extra = extra
        self.default = default
        self.worker_url = worker_url.rstrip("/")

    @property
    def _configs(self) -> dict[str, LlmModelConfig]:
        """The configured models and those `extra` finds now (fine-tuned adapters registered while running)."""
        if self._extra is None:
            return self._settings_configs
        return {**self._extra(), **self._settings_configs}

    def names(self) -> list[str]:
        return sorted(self._configs)

    def names_by_engine(self, engine: str) -> list[str]:
        return [name for name in self.names() if self._configs[name].engine == engine]

    def require_configured(self) -> None:
        if not self._configs:
            raise LlmNotConfigured(f"no LLM is configured: {HOW_TO_CONFIGURE}")

    def check_known(self, name: str) -> LlmModelConfig:
        """The config of `name`; raises UnknownModel (or LlmNotConfigured when there are no models at all)."""
        self.require_configured()
        config = self._configs.get(name)
        if config is None:
            raise UnknownModel(f"unknown model {name!r}; configured: {', '.join(self.names())} (llm_models)")
        return config

    def resolve(self, name: str | None) -> LlmEndpoint:
        """The endpoint of `name`, or of `default_llm` when no name is given."""
        self.require_configured()
        if not name:
            if not self.default:
                raise LlmNotConfigured(
                    f"no model_name was given and `default_llm` is not set; pass one of {', '.join(self.names())} "
                    "or set default_llm in configs/settings.yaml"
                )
            if self.default not in self._configs:
                raise UnknownModel(f"default_llm {self.default!r} is not in llm_models ({', '.join(self.names())})")
            name = self.default
        config = self.check_known(name)
        return self._endpoint(name, config)

    def _endpoint(self, name: str, config: LlmModelConfig) -> LlmEndpoint:
        key = config.api_key.get_secret_value() if config.api_key else None
        if config.engine == "transformers":
            base_url, model = self.worker_url, name
        else:
            base_url, model = (config.base_url or "").rstrip("/"), config.model or name
        return LlmEndpoint(name, config.engine, base_url, model, key, config.context_length, config.max_new_tokens)

    def public_config(self, name: str) -> dict[str, Any]:
        """The model's settings without secrets (no api_key; credentials in base_url masked)."""
        config = self.check_known(name)
        public = config.model_dump(mode="json", exclude={"api_key"})
        if public.get("base_url"):
            public["base_url"] = mask_url(public["base_url"])
        public["name"] = name
        public["default"] = name == self.default
        return public

    def public_configs(self, names: list[str] | None = None) -> dict[str, dict[str, Any]]:
        return {name: self.public_config(name) for name in (self.names() if names is None else names)}
