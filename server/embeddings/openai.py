"""Any OpenAI-compatible `/embeddings` endpoint (vLLM, Xinference, LocalAI, text-embeddings-inference...)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np

from server.embeddings._vectors import batches, empty, normalise_rows
from server.embeddings.base import Vectors
from server.errors import EmbeddingUnavailable

_PROBE = "dimension probe"


class OpenAIEmbedder:
    """Posts `{"model", "input"}` batches to `{base_url}/embeddings`; vectors are re-normalised here.

    `dim` is taken from the constructor when given (and then checked), otherwise learned from the first
    response, embedding a probe text if nothing has been embedded yet. Every failure (unreachable server,
    timeout, HTTP error, malformed answer) raises EmbeddingUnavailable naming the URL; the API key is never
    part of a message.
    """

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        model: str | None = None,
        api_key: str | None = None,
        batch_size: int = 32,
        dim: int | None = None,
        timeout: float = 60.0,
    ) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.name = name
        self.url = base_url.rstrip("/") + "/embeddings"
        self.model = model or name
        self.batch_size = batch_size
        self.timeout = timeout
        self._api_key = api_key
        self._dim = dim
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None

    @property
    def dim(self) -> int:
        if self._dim is None:
            self.embed_query(_PROBE)
        assert self._dim is not None
        return self._dim

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return empty(self.dim)
        return np.concatenate([self._embed_batch(batch) for batch in batches(texts, self.batch_size)])

    def embed_query(self, text: str) -> Vectors:
        return self._embed_batch([text])[0]

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return self.embed_documents(texts)

    def close(self) -> None:
        """Closes the pooled HTTP connections (a later call opens new ones)."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
                self._client = httpx.Client(headers=headers, timeout=self.timeout)
            return self._client

    def _embed_batch(self, texts: list[str]) -> Vectors:
        payload = self._post({"model": self.model, "input": texts})
        vectors = self._parse(payload, len(texts))
        if self._dim is None:
            self._dim = vectors.shape[1]
        elif vectors.shape[1] != self._dim:
            raise self._error(f"returned vectors of size {vectors.shape[1]}, expected {self._dim}")
        return normalise_rows(vectors)

    def _post(self, body: dict[str, Any]) -> Any:
        try:
            response = self._http().post(self.url, json=body)
        except httpx.TimeoutException as error:
            raise self._error(f"timed out after {self.timeout}s ({type(error).__name__})") from error
        except httpx.HTTPError as error:
            raise self._error(f"request failed ({type(error).__name__}: {error})") from error
        if not response.is_success:
            raise self._error(f"answered HTTP {response.status_code}: {response.text[:200]!r}")
        try:
            return response.json()
        except ValueError as error:
            raise self._error(f"answered with invalid JSON: {response.text[:200]!r}") from error

    def _parse(self, payload: Any, count: int) -> Vectors:
        items = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(items, list) or len(items) != count:
            raise self._error(f"answered without a `data` list of {count} embeddings")
        try:
            ordered = sorted(items, key=lambda item: int(item["index"]))
            if [int(item["index"]) for item in ordered] != list(range(count)):
                raise ValueError("indexes are not 0..n-1")
            vectors = np.array([item["embedding"] for item in ordered], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as error:
            raise self._error(f"answered with malformed embeddings ({error})") from error
        if vectors.ndim != 2 or vectors.shape[1] == 0 or not np.isfinite(vectors).all():
            raise self._error("answered with embeddings that are not equal-length lists of finite numbers")
        if not np.linalg.norm(vectors, axis=1).all():
            raise self._error("answered with an all-zero embedding")
        return vectors

    def _error(self, cause: str) -> EmbeddingUnavailable:
        if self._api_key:  # a server may echo the key back in its error text
            cause = cause.replace(self._api_key, "***")
        return EmbeddingUnavailable(
            f"embedding model {self.name!r}: the endpoint {self.url} {cause}; "
            "check that the embedding server is running and `base_url`/`model`/`api_key` are right"
        )
