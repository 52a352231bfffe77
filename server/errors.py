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


class Unauthorized(ZhikuError):
    status_code = 401


class KnowledgeBaseNotFound(ZhikuError):
    status_code = 404


class KnowledgeBaseExists(ZhikuError):
    status_code = 409


class FileNotInKnowledgeBase(ZhikuError):
    status_code = 404


class DuplicateFile(ZhikuError):
    status_code = 409


class UnsupportedFileType(ZhikuError):
    status_code = 415


class DocumentLoadError(ZhikuError):
    """A file could not be parsed (corrupt, empty, wrong encoding...)."""

    status_code = 422


class FileTooLarge(ZhikuError):
    status_code = 413


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
    status_code = 500


class StorageError(ZhikuError):
    """The disk or database refused a write; nothing was changed."""


class ConfigError(ZhikuError):
    """Settings that cannot be used; raised at start-up, naming the key."""
