"""Embedding models: one module per backend, a factory, and a pool of the configured models."""

from server.embeddings.base import Embedder, Vectors
from server.embeddings.factory import create_embedder
from server.embeddings.pool import EmbeddingPool

__all__ = ["Embedder", "EmbeddingPool", "Vectors", "create_embedder"]
