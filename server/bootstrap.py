"""The composition root: turns settings into running services. Only entry points (API, CLI, init_database.py,
benchmarks, tests) call `build_services`; everything below takes its collaborators in its constructor."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import make_url

from configs import Settings
from server.auth.audit import AuditLog
from server.auth.keys import KeyService
from server.bootstrap_chat import build_chat
from server.chat.agent.service import AgentService
from server.chat.llm_client import DEFAULT_TEMPERATURE, LlmClient
from server.chat.model_service import ModelService
from server.chat.prompts import PromptTemplates
from server.chat.service import ChatService
from server.chat.summaries import SummaryService
from server.chat.temp_knowledge import TEMP_KNOWLEDGE_TTL_S, TempKnowledgeStore
from server.db.engine import make_engine, make_session_factory
from server.db.models import KnowledgeBase
from server.db.schema import upgrade_database
from server.embeddings import EmbeddingPool
from server.embeddings.pool import EmbedLimits
from server.finetune.runs import FinetuneRuns
from server.jobs.queue import JobQueue, make_huey
from server.jobs.registry import JobRegistry
from server.jobs.runner import IngestRunner, RunnerParts, WriteCheck
from server.jobs.runtime import JobRuntime
from server.jobs.service import JobOptions, JobService
from server.jobs.staging import JOBS_DIR
from server.jobs.sync import FolderSync, FolderWatcher
from server.knowledge_base.catalog import KbCatalog
from server.knowledge_base.chunks import ChunkService
from server.knowledge_base.faq import FaqService
from server.knowledge_base.files import FileService
from server.knowledge_base.ingest import FilePreparer, IngestLimits
from server.knowledge_base.journal import WriteJournal
from server.knowledge_base.keywords import KeywordIndexes
from server.knowledge_base.lease import WriterLease
from server.knowledge_base.lifecycle import KbLifecycle
from server.knowledge_base.locks import KbLocks
from server.knowledge_base.maintenance import MaintenanceService
from server.knowledge_base.params import KbDefaults
from server.knowledge_base.porter import KbPorter
from server.knowledge_base.probes import CrashProbes
from server.knowledge_base.rebuild import RebuildService
from server.knowledge_base.recovery import Recovery, RecoveryReport
from server.knowledge_base.search import SearchService
from server.knowledge_base.service import KnowledgeBaseService
from server.knowledge_base.storage import KbStorage
from server.knowledge_base.warmup import Warmer
from server.knowledge_base.writer import KbWriter
from server.loaders import LOADERS
from server.ocr import OcrService
from server.retrieval.calibration import bundled
from server.retrieval.modes import SEARCH_MODES
from server.retrieval.reranker import CrossEncoderReranker
from server.retrieval.search import Searcher
from server.server_configs import UI_HISTORY_LEN, FileTypeInfo, ServerConfigs, chatchat_keys
from server.vectorstores.cache import StoreCache
from server.vectorstores.pg_engine import dispose_engine
from server.vectorstores.registry import STORES, MilvusOptions, PgOptions


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@dataclass
class KbCore:
    """The knowledge-base parts every service shares: the registry, the disk layout and stores, the locks and the
    journaled write path. Built once by `build_services`."""

    catalog: KbCatalog
    storage: KbStorage
    keywords: KeywordIndexes
    locks: KbLocks
    writer: KbWriter
    lifecycle: KbLifecycle
    probes: CrashProbes
    lease: WriterLease
    recovery: RecoveryReport
    repair: Recovery  # recovers the writes of processes that die while this one runs
    journal: WriteJournal


@dataclass
class Services:
    """Every service, built once per process; routes, the CLI and tests take the one they need."""

    knowledge_bases: KnowledgeBaseService
    files: FileService
    chunks: ChunkService
    search: SearchService
    rebuild: RebuildService
    maintenance: MaintenanceService
    embeddings: EmbeddingPool
    chat: ChatService
    agent: AgentService
    summaries: SummaryService
    models: ModelService
    finetune: FinetuneRuns
    temp_knowledge: TempKnowledgeStore
    prompts: PromptTemplates
    server_configs: ServerConfigs
    jobs: JobService
    job_runtime: JobRuntime
    keys: KeyService
    audit: AuditLog
    folder_sync: FolderSync
    porter: KbPorter  # KB archives: export, import
    faq: FaqService  # FAQ files: import, list, edit (their direct answers: server/chat/direct_answers.py)
    _watcher: FolderWatcher | None  # set when the API watches the synced KBs' folders
    warmer: Warmer
    core: KbCore
    _searcher: Searcher
    _llm_client: LlmClient
    _pg_uri: str | None
    _ocr: OcrService

    @property
    def catalog(self) -> KbCatalog:
        return self.core.catalog

    @property
    def storage(self) -> KbStorage:
        return self.core.storage

    def start(self, *, warm_up: bool = False) -> None:
        """Start this process's job workers and folder watcher (the API and worker processes do; one-shot tools
        need not), and with `warm_up` (the API) load the recent KBs' models and indexes in the background."""
        self.job_runtime.start()
        if self._watcher is not None:
            self._watcher.start()
        if warm_up:
            self.warmer.start()

    async def aclose(self) -> None:
        await self._llm_client.aclose()
        self.finetune.close()
        self.close()

    def close(self) -> None:
        """Stop the job workers and the search threads, flush and close the open stores, release database pools
        and the lease."""
        self.warmer.stop()
        if self._watcher is not None:
            self._watcher.stop()
        self.job_runtime.stop()
        self._searcher.close()
        self._ocr.close()
        self.core.storage.close()
        if self._pg_uri:
            dispose_engine(self._pg_uri)  # the pgvector stores share one pool per server
        self.core.catalog.engine.dispose()
        self.core.lease.release()


def kb_defaults(settings: Settings) -> KbDefaults:
    kb = settings.kb
    return KbDefaults(
        vs_type=kb.default_vs_type,
        embed_model=kb.default_embed_model,
        chunk_size=kb.chunk_size,
        chunk_overlap=kb.chunk_overlap,
        zh_title_enhance=kb.zh_title_enhance,
        top_k=kb.top_k,
        score_threshold=kb.score_threshold,
        search_mode=kb.search_mode,
        max_query_chars=settings.limits.max_query_chars,
    )


def reserved_names(settings: Settings) -> frozenset[str]:
    """Names in the data dir that are not knowledge bases: the SQLite registry with its companions, Milvus Lite."""
    names = {".writers", JOBS_DIR}
    finetune = settings.finetune.resolved_dir(settings.data_dir)
    if finetune.parent.resolve() == settings.data_dir.resolve():
        names.add(finetune.name)  # fine-tuning runs, not a knowledge base
    url = make_url(settings.sqlalchemy_url)
    if url.get_backend_name() == "sqlite" and url.database:
        registry = Path(url.database)
        names |= {registry.name + suffix for suffix in ("", "-wal", "-shm", "-journal")}
    milvus = settings.store_options().get("milvus")
    if isinstance(milvus, MilvusOptions) and "://" not in milvus.uri:
        names.add(Path(milvus.uri).name)
    return frozenset(names)


def embed_limits(settings: Settings) -> EmbedLimits:
    limits = settings.limits
    return EmbedLimits(limits.max_embed_chars, limits.max_embed_total_chars, limits.max_query_chars)


def build_kb_core(settings: Settings, embeddings: EmbeddingPool) -> KbCore:
    """Open the registry (creating or upgrading its tables), take this process's writer lease, and recover what a
    crash interrupted before anything is served."""
    catalog = _open_catalog(settings)
    options = settings.store_options()
    stores = StoreCache(capacity=settings.kb.loaded_stores, options=options)
    storage = KbStorage(
        settings.data_dir,
        embeddings=embeddings,
        stores=stores,
        store_options=options,
        reserved=reserved_names(settings),
    )
    locks = KbLocks(settings.data_dir / ".writers" / "kb")  # shared with other processes on this data dir
    keywords = KeywordIndexes(catalog, storage, locks)
    lease = WriterLease(settings.data_dir)
    lease.acquire()
    journal = WriteJournal(catalog, lease.id)
    probes = CrashProbes(settings.crash_test.pause_at, settings.crash_test.marker_dir)
    writer = KbWriter(catalog, storage, keywords, locks, journal, probes)
    lifecycle = KbLifecycle(catalog, storage, keywords, locks, journal, probes)
    repair = Recovery(catalog, storage, journal, writer, lifecycle, lease, locks)
    report = repair.run()
    return KbCore(catalog, storage, keywords, locks, writer, lifecycle, probes, lease, report, repair, journal)


def build_services(
    settings: Settings, *, embeddings: EmbeddingPool | None = None, separate_worker: bool = False
) -> Services:
    """Every service, wired on one KbCore. A `separate_worker` (server.job_worker) writes only KBs whose store
    other processes may write too."""
    limits = settings.limits
    embeddings = embeddings or EmbeddingPool(
        settings.embed_models, limits=embed_limits(settings), query_batch=settings.kb.query_batch
    )
    core = build_kb_core(settings, embeddings)
    catalog, storage, keywords = core.catalog, core.storage, core.keywords
    ingest_limits = IngestLimits(limits.load_limits(), limits.max_chunks_per_file, limits.max_embed_chars)
    ocr = OcrService(settings.ocr.options(), workers=settings.ocr.workers, threads=settings.ocr.threads_per_worker)
    preparer = FilePreparer(embeddings, parse_workers=settings.kb.parse_workers, limits=ingest_limits, ocr=ocr)
    defaults = kb_defaults(settings)
    calibration = bundled() if settings.kb.calibrated_scores else None
    searcher = Searcher(reranker=_reranker(settings), fusion=settings.kb.fusion, calibration=calibration)
    search = SearchService(catalog, storage, keywords, embeddings, searcher, defaults)
    temp = TempKnowledgeStore(embeddings, preparer, defaults, max_upload_bytes=settings.max_upload_bytes)
    pg = settings.store_options().get("pg")
    files = FileService(catalog, storage, preparer, core.writer, defaults, max_upload_bytes=settings.max_upload_bytes)
    jobs, job_runtime, job_registry = build_jobs(
        settings, core, files, preparer, defaults, separate_worker=separate_worker
    )
    folder_sync = FolderSync(catalog, storage, core.writer, jobs, job_registry)
    watch = settings.jobs.watch_folders and not separate_worker
    watcher = (
        FolderWatcher(folder_sync, settings.data_dir, debounce_ms=settings.jobs.sync_debounce_ms) if watch else None
    )
    knowledge_bases = KnowledgeBaseService(catalog, storage, core.lifecycle, embeddings, defaults)
    talk = build_chat(settings, core.catalog, core.storage, search, temp, embeddings)
    porter = KbPorter(catalog, storage, core.locks, core.writer, knowledge_bases, embeddings, core.journal, core.probes)
    if not core.recovery.skipped:
        porter.sweep()
    return Services(
        knowledge_bases=knowledge_bases,
        files=files,
        chunks=ChunkService(catalog, embeddings, core.writer),
        search=search,
        rebuild=RebuildService(
            catalog,
            storage,
            keywords,
            preparer,
            core.lifecycle,
            core.locks,
            embeddings,
            defaults,
            core.probes,
            knowledge_bases,
        ),
        maintenance=MaintenanceService(catalog, storage, core.writer),
        embeddings=embeddings,
        chat=talk.chat,
        summaries=talk.summaries,
        agent=talk.agent,
        models=talk.models,
        finetune=FinetuneRuns(settings),
        temp_knowledge=temp,
        prompts=talk.prompts,
        server_configs=server_configs(settings, talk.prompts),
        jobs=jobs,
        job_runtime=job_runtime,
        keys=KeyService(catalog.sessions, enabled=settings.api.api_key is not None),
        audit=AuditLog(catalog.sessions),
        folder_sync=folder_sync,
        porter=porter,
        faq=FaqService(
            catalog,
            storage,
            files,
            limits.faq_limits(),
            load_limits=limits.load_limits(),
            max_upload_bytes=settings.max_upload_bytes,
        ),
        _watcher=watcher,
        warmer=Warmer(catalog, search, settings.kb.warm_up_kbs),
        core=core,
        _searcher=searcher,
        _llm_client=talk.client,
        _pg_uri=pg.uri if isinstance(pg, PgOptions) else None,
        _ocr=ocr,
    )


def build_jobs(
    settings: Settings,
    core: KbCore,
    files: FileService,
    preparer: FilePreparer,
    defaults: KbDefaults,
    *,
    separate_worker: bool,
) -> tuple[JobService, JobRuntime, JobRegistry]:
    """The job service on its queue, the runtime whose worker threads run the queued batches, and the registry."""
    config = settings.jobs
    registry = JobRegistry(core.catalog)
    stopping = threading.Event()
    parts = RunnerParts(core.catalog, core.storage, preparer, core.writer, files)
    check = shared_stores_only(settings) if separate_worker else None
    runner = IngestRunner(
        registry, parts, lease=core.lease.id, duplicates=config.duplicates, stopping=stopping, can_write=check
    )
    huey = make_huey(config.queue, sqlite_file=settings.data_dir / JOBS_DIR / "queue.db", redis_url=config.redis_url)
    queue = JobQueue(huey, runner.run_batch)
    options = JobOptions(
        batch_files=config.batch_files,
        max_upload_bytes=settings.max_upload_bytes,
        keep_ended_days=config.keep_ended_days,
    )
    service = JobService(registry, queue, core.catalog, core.storage, defaults, core.lease, options)
    runtime = JobRuntime(
        service,
        queue,
        stopping,
        workers=config.workers,
        reclaim_interval_s=config.reclaim_interval_s,
        repair=core.repair.recover_dead,
    )
    return service, runtime, registry


def shared_stores_only(settings: Settings) -> WriteCheck:
    """What a separate job worker may write: KBs on stores that other processes write too (pg, a Milvus server)."""
    options = settings.store_options()

    def reason(kb: KnowledgeBase) -> str | None:
        if options[kb.vs_type].shared():
            return None
        return (
            f"knowledge base {kb.name!r} uses the {kb.vs_type} store, which only the API process writes; "
            "give the API job workers (jobs.workers > 0), or use pg or a Milvus server for separate workers"
        )

    return reason


def _open_catalog(settings: Settings) -> KbCatalog:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.sqlalchemy_url)
    upgrade_database(engine)
    return KbCatalog(make_session_factory(engine))


def _reranker(settings: Settings) -> CrossEncoderReranker | None:
    config = settings.reranker
    if not config.enabled or not config.path:
        return None
    return CrossEncoderReranker(Path(config.path), device=config.device)


def configured_vs_types(settings: Settings) -> list[str]:
    """The stores a new KB can use here: installed, and configured where they need settings (pg needs its uri)."""
    options = settings.store_options()
    return [name for name in STORES.kb_types() if STORES.get(name).unavailable(options[name]) is None]


def server_configs(settings: Settings, prompts: PromptTemplates) -> ServerConfigs:
    kb = settings.kb
    return ServerConfigs(
        **chatchat_keys(settings, prompts.texts(), DEFAULT_TEMPERATURE),
        top_k=kb.top_k,
        score_threshold=kb.score_threshold,
        search_mode=kb.search_mode,
        search_modes=list(SEARCH_MODES),
        chunk_size=kb.chunk_size,
        chunk_overlap=kb.chunk_overlap,
        zh_title_enhance=kb.zh_title_enhance,
        default_vs_type=kb.default_vs_type,
        vector_store_types=configured_vs_types(settings),
        default_embed_model=kb.default_embed_model,
        embed_models=sorted(settings.embed_models),
        llm_models=sorted(settings.llm_models),
        default_llm=settings.default_llm,
        temperature=DEFAULT_TEMPERATURE,
        history_len=UI_HISTORY_LEN,
        max_upload_mb=settings.api.max_upload_mb,
        temp_knowledge_ttl_s=TEMP_KNOWLEDGE_TTL_S,
        language=settings.webui.language,
        file_types=[FileTypeInfo(extension=ext, loader=loader.name) for ext, loader in LOADERS],
        prompt_templates={kind: prompts.names(kind) for kind in prompts.types()},
    )
