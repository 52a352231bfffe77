"""Exceptions raised by the service layer.

Each condition has its own small class carrying the HTTP status it maps to, so one API exception handler can
turn any of them into a response without knowing the details. Library code (loaders, stores, embedders) raises
these too; messages must say what went wrong *and* what to do about it.
"""

from __future__ import annotations


class ZhikuError(Exception):
    """Base class; `status_code` is the HTTP status the API answers with."""

    status_code: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ZhikuError):
    status_code = 422


class InvalidName(InvalidInput):
    """A knowledge-base name or file path that cannot be used."""


class InvalidFilter(InvalidInput):
    """A search filter or a file's tags that cannot be used (an unknown key, a bad date, an empty tag)."""


class Unauthorized(ZhikuError):
    status_code = 401


class KnowledgeBaseNotFound(ZhikuError):
    status_code = 404


class KnowledgeBaseExists(ZhikuError):
    status_code = 409


class FileNotInKnowledgeBase(ZhikuError):
    status_code = 404


class LinkInContent(FileNotInKnowledgeBase):
    """A path of a content folder goes through a symbolic link: as far as Zhiku is concerned, no file is there."""


class DuplicateFile(ZhikuError):
    status_code = 409

    @classmethod
    def name_taken(cls, file_name: str, kb_name: str) -> DuplicateFile:
        return cls(f"{file_name} already exists in {kb_name!r}; upload with override=true to replace it")


class UnsupportedFileType(ZhikuError):
    status_code = 415


class DocumentLoadError(ZhikuError):
    """A file could not be parsed (corrupt, empty, wrong encoding...)."""

    status_code = 422


class FileTooLarge(ZhikuError):
    status_code = 413


class OcrFailed(DocumentLoadError):
    """A page could not be read by OCR: it took too long, its worker died, or its image was unreadable."""


class OcrUnavailable(ZhikuError):
    """OCR is needed but cannot run: RapidOCR is not installed, the pool is closed or stayed busy."""

    status_code = 503


class OcrDisabled(UnsupportedFileType):
    """A file that can only be read by OCR, while OCR is off (ocr: never)."""


class UnknownEmbeddingModel(ZhikuError):
    status_code = 422


class EmbeddingUnavailable(ZhikuError):
    """The embedding model could not be loaded or its endpoint did not answer."""

    status_code = 503


class UnknownVectorStore(ZhikuError):
    status_code = 422


class StoreUnavailable(ZhikuError):
    """A vector store backend cannot be reached or its package is missing."""

    status_code = 503


class StoreCorrupted(ZhikuError):
    """A knowledge base's vectors cannot be used as they are; rebuilding the KB's vector store repairs it."""

    status_code = 500


class StoreMissing(StoreCorrupted):
    """A knowledge base's collection (FAISS file, Milvus collection, pg table) does not exist (dropped or never
    created)."""


class StoreDimensionMismatch(StoreCorrupted):
    """A collection holds vectors of another size than the knowledge base's embedding model gives."""


class DuplicateChunkId(InvalidInput):
    """An add names chunk ids that the store already holds."""


class StorageError(ZhikuError):
    """The disk or database refused a write; nothing was changed."""


class ConfigError(ZhikuError):
    """Settings that cannot be used; raised at start-up, naming the key."""


class LlmNotConfigured(ZhikuError):
    """No chat model is set up (or none is named and there is no `default_llm`)."""

    status_code = 503


class UnknownModel(ZhikuError):
    status_code = 404


class LlmUnavailable(ZhikuError):
    """The LLM endpoint (our worker or a remote one) could not be reached or timed out."""

    status_code = 503


class LlmUpstreamError(ZhikuError):
    """The LLM endpoint answered with an error or with something that is not the OpenAI protocol."""

    status_code = 502


class MessageNotFound(ZhikuError):
    status_code = 404


class TempKnowledgeNotFound(ZhikuError):
    """A `knowledge_id` from upload_temp_docs that is unknown or has expired."""

    status_code = 404


class PromptNotFound(ZhikuError):
    status_code = 404


class PortInUse(ZhikuError):
    """startup.py found a service's port already bound; nothing was started."""


class ServiceFailed(ZhikuError):
    """A process started by startup.py exited or did not become ready; carries the tail of its log."""

    def __init__(self, service: str, reason: str, log_tail: str) -> None:
        super().__init__(f"{service} {reason}")
        self.service = service
        self.reason = reason
        self.log_tail = log_tail


class ModelLoadError(ZhikuError):
    """The LLM worker could not load a chat model (missing folder, missing package, no GPU for quantization)."""

    status_code = 503


class AdapterMismatch(ModelLoadError):
    """A PEFT adapter trained on another base model than the one it is put on."""

    status_code = 422


class ModelTooLarge(ZhikuError):
    """A model bigger than the worker's whole memory budget for its device: no unloading makes it fit."""

    status_code = 507


class NoRoomForModel(ZhikuError):
    """The budget would fit the model, but the loaded models that would have to go are answering requests."""

    status_code = 503


class DatasetError(InvalidInput):
    """A fine-tuning dataset that cannot be used as it is: broken lines, empty fields, an unknown format."""


class TrainingRefused(InvalidInput):
    """Fine-tuning options that cannot work here (4-bit on a machine without CUDA, a model that is not local)."""


class RunNotFound(ZhikuError):
    status_code = 404


class TrainingBusy(ZhikuError):
    """As many fine-tuning runs as finetune.max_running are going, or this run is going already."""

    status_code = 409


class RunFinished(ZhikuError):
    """Cancelling a fine-tuning run that has already ended."""

    status_code = 409


class StoreNotConfigured(StoreUnavailable):
    """A vector store type whose connection settings are missing (e.g. vector_stores.pg.uri)."""


class RerankerUnavailable(ZhikuError):
    """The configured cross-encoder reranker folder is missing or cannot be loaded."""

    status_code = 503


class UnknownSearchMode(InvalidInput):
    """A search_mode other than dense, keyword or hybrid."""


class JobNotFound(ZhikuError):
    status_code = 404


class JobFinished(ZhikuError):
    """Cancelling a job that has already ended."""

    status_code = 409


class NothingToRetry(ZhikuError):
    """Retrying a job that has no failed file (none failed, or they are already queued again)."""

    status_code = 409


class QueueUnavailable(ZhikuError):
    """The job queue's storage (Redis) cannot be reached."""

    status_code = 503


class SearchEngineNotConfigured(ZhikuError):
    """Search-engine chat with no engine under web_search.engines."""

    status_code = 503


class UnknownSearchEngine(ZhikuError):
    status_code = 404


class SearchEngineUnavailable(ZhikuError):
    """The search engine could not be reached or timed out."""

    status_code = 503


class SearchEngineError(ZhikuError):
    """The search engine answered with an error or with something that is not its result format."""

    status_code = 502


class ToolCallingUnsupported(ZhikuError):
    """Agent chat with a model that cannot call tools (our worker's models, or an endpoint that refuses `tools`)."""

    status_code = 422


class Forbidden(ZhikuError):
    """The key is valid but its scope does not allow this (a read key asked to write, a scoped key asked for an
    admin route)."""

    status_code = 403


class ApiKeyNotFound(ZhikuError):
    status_code = 404


class KeysDisabled(ZhikuError):
    """Scoped keys need the admin key (api.api_key) to be set first."""

    status_code = 409


class ApiKeyRevoked(ZhikuError):
    status_code = 409


class ArchiveRefused(InvalidInput):
    """A KB archive that is damaged, truncated or hostile (links, paths out of the KB, a zip bomb): nothing of it
    is written."""


class ArchiveTooNew(InvalidInput):
    """A KB archive in a format newer than this version of Zhiku reads."""


class InvalidFaq(InvalidInput):
    """A FAQ file or FAQ edit that cannot be read as question–answer pairs (no question or answer column, an empty
    answer, an entry over the limits); nothing of it is written."""
