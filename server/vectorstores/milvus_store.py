"""Milvus vector store: one collection per knowledge base and store generation (the registry's `vs_collection`).

Schema: `id` VARCHAR(64) primary key, `vector` FLOAT_VECTOR(dim), `text` VARCHAR(65535 bytes), `metadata` JSON.
Vectors are indexed with the COSINE metric, so Milvus reports the cosine similarity, which `cosine_to_score`
clamps to [0, 1] like every backend. Collections use Strong consistency, and every read asks for it too: an
add is visible to the next search or count.

`uri` is a Milvus Lite database path (`<data_dir>/milvus.db`) or a server address (`http://host:19530`). The
connection is shared by every store on that uri (see milvus_pool). Milvus has no "insert unless present", so
`add` looks its ids up first; writes to one store instance are serialised by a lock, and the services serialise
writes to a KB anyway.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
from pymilvus import DataType, MilvusClient
from pymilvus.exceptions import MilvusException

from server.errors import (
    ConfigError,
    DuplicateChunkId,
    InvalidInput,
    StoreDimensionMismatch,
    StoreMissing,
    StoreUnavailable,
)
from server.vectorstores.base import Hit, StoredChunk, Vectors, cosine_to_score
from server.vectorstores.checks import Batch, checked_batch, matches_nothing, query_row
from server.vectorstores.milvus_expr import in_list, is_writable, metadata_filter
from server.vectorstores.milvus_pool import POOL, Endpoint

if TYPE_CHECKING:
    from server.vectorstores.registry import MilvusOptions, StoreSpec

log = logging.getLogger(__name__)

MAX_ID_BYTES = 64
MAX_TEXT_BYTES = 65_535
MAX_TOP_K = 16_384  # Milvus' limit on one search's results
INSERT_BATCH = 2_000
LOOKUP_BATCH = 1_000  # ids per `id in [...]` expression
INDEX_TYPES = ("HNSW", "AUTOINDEX", "FLAT")
_COLLECTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
_STRONG = "Strong"
_FIELDS = ["text", "metadata"]


class MilvusStore:
    """One KB's vectors for one embedding model, in the Milvus collection `collection`."""

    def __init__(
        self, endpoint: Endpoint, collection: str, dim: int, *, index_type: str = "HNSW", kb_name: str = "KB"
    ) -> None:
        if dim <= 0:
            raise InvalidInput(f"vector dimension must be positive, got {dim}")
        if not _COLLECTION_NAME.fullmatch(collection):
            raise InvalidInput(f"{collection!r} is not a valid Milvus collection name (ASCII letters, digits, _)")
        if index_type not in INDEX_TYPES:
            raise ConfigError(f"vector_stores.milvus.index_type must be one of {INDEX_TYPES}, got {index_type!r}")
        self._endpoint = endpoint
        self._collection = collection
        self._dim = dim
        self._index_type = index_type
        self._kb_name = kb_name
        self._loaded = False  # whether this lease has made sure the collection is loaded
        self._write_lock = threading.Lock()
        self._schema_lock = POOL.schema_lock(endpoint, collection)
        self._lease_lock = threading.Condition()
        self._active = 0  # calls in flight; `close` waits for them, so it never stops a Lite server under a call
        self._client: Any = None
        self._release: Callable[[], Any] = lambda: None
        with self._calls("connect", load=False):  # connects now, so a bad uri fails at open
            pass

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def collection(self) -> str:
        return self._collection

    def create(self) -> None:
        with self._calls("create the collection", load=False) as client, self._schema_lock:
            if client.has_collection(self._collection):
                self._check_dimension(client)
                client.load_collection(self._collection)  # a no-op when loaded; Lite refuses reads when released
                self._loaded = True
                return
            client.create_collection(
                self._collection,
                schema=self._schema(),
                index_params=self._index_params(client),
                consistency_level=_STRONG,
            )
            client.load_collection(self._collection)
            self._loaded = True

    def drop(self) -> None:
        """Drop the collection and let go of the connection (like `close`; a later call reconnects)."""
        with self._calls("drop the collection", load=False) as client, self._schema_lock:
            if client.has_collection(self._collection):
                client.drop_collection(self._collection)
        self.close()

    def add(
        self,
        texts: Sequence[str],
        vectors: Vectors,
        metadatas: Sequence[Mapping[str, Any]],
        ids: Sequence[str] | None = None,
    ) -> list[str]:
        batch = checked_batch(texts, vectors, metadatas, ids, self._dim)
        if not batch.ids:
            return []
        _check_sizes(batch)
        with self._write_lock, self._calls("add chunks") as client:
            clash = [] if ids is None else self._existing(client, batch.ids)  # fresh uuid4s cannot clash
            if clash:
                raise DuplicateChunkId(f"{len(clash)} ids already exist in the store, e.g. {clash[:3]}")
            self._insert(client, batch)
        return batch.ids

    def delete(self, ids: Sequence[str]) -> int:
        with self._write_lock, self._calls("delete chunks") as client:
            found = self._existing(client, list(dict.fromkeys(ids)))
            for start in range(0, len(found), LOOKUP_BATCH):
                client.delete(self._collection, filter=in_list("id", found[start : start + LOOKUP_BATCH]))
        return len(found)

    def search(
        self,
        vector: Vectors,
        top_k: int,
        score_threshold: float = 0.0,
        where: Mapping[str, Any] | None = None,
    ) -> list[Hit]:
        """Nearest chunks; `top_k` is capped at Milvus' limit of 16,384."""
        query = query_row(vector, self._dim, top_k)
        if matches_nothing(where):
            return []
        limit = min(top_k, MAX_TOP_K)
        expression = metadata_filter("metadata", where) if where else ""
        with self._calls("search") as client:
            [rows] = client.search(
                self._collection,
                data=[query[0].tolist()],
                limit=limit,
                filter=expression,
                output_fields=_FIELDS,
                search_params=self._search_params(limit),
                consistency_level=_STRONG,
            )
        hits = [_hit(row) for row in rows]
        return [hit for hit in hits if hit.score >= score_threshold]

    def get(self, ids: Sequence[str]) -> list[StoredChunk]:
        wanted = _storable(list(dict.fromkeys(ids)))
        found: dict[str, StoredChunk] = {}
        with self._calls("read chunks") as client:
            for start in range(0, len(wanted), LOOKUP_BATCH):
                rows = self._query(client, in_list("id", wanted[start : start + LOOKUP_BATCH]), ["id", *_FIELDS])
                found.update((row["id"], StoredChunk(row["id"], row["text"], dict(row["metadata"]))) for row in rows)
        return [found[i] for i in ids if i in found]

    def vectors(self, ids: Sequence[str]) -> dict[str, Vectors]:
        wanted = _storable(list(dict.fromkeys(ids)))
        found: dict[str, Vectors] = {}
        with self._calls("read vectors") as client:
            for start in range(0, len(wanted), LOOKUP_BATCH):
                rows = self._query(client, in_list("id", wanted[start : start + LOOKUP_BATCH]), ["id", "vector"])
                found.update((row["id"], np.asarray(row["vector"], dtype=np.float32)) for row in rows)
        return found

    def count(self) -> int:
        with self._calls("count chunks") as client:
            [row] = self._query(client, "", ["count(*)"])
        return int(row["count(*)"])

    def flush(self) -> None:
        """Milvus Lite: write the in-memory segment to disk. Servers: nothing to do (see below)."""
        # A Milvus server has the data in its write-ahead log once an insert returns, and it rate-limits flush
        # calls, so flushing after every upload would fail under load. Milvus Lite keeps a memtable and a WAL;
        # flush turns them into segment files.
        if self._endpoint.local:
            with self._calls("flush") as client:
                client.flush(self._collection)

    def close(self) -> None:
        """Release this store's share of the connection once calls in flight are done; the collection stays."""
        with self._lease_lock:
            self._lease_lock.wait_for(lambda: self._active == 0)
            if self._client is None:
                return
            self._client = None
            release = self._release
        release()

    # -- internals -------------------------------------------------------------------------------------------

    @contextmanager
    def _calls(self, action: str, *, load: bool = True) -> Iterator[Any]:
        """The client (reconnecting after `close`), with Milvus errors turned into StoreUnavailable.

        With `load`, the collection is loaded first, once per lease: a restarted Milvus Lite server (the last store
        on it closed, as after `python init_database.py`) starts with every collection released.
        """
        client = self._lease()
        try:
            if load and not self._loaded:
                self._load(client)
            yield client
        except MilvusException as exc:
            reason = self._endpoint.redact(str(exc.message))
            raise StoreUnavailable(
                f"milvus at {self._endpoint.address} could not {action} (collection {self._collection}): {reason}"
            ) from None
        finally:
            with self._lease_lock:
                self._active -= 1
                self._lease_lock.notify_all()

    def _lease(self) -> Any:
        """This store's share of the pooled client, counted as one call in flight until `_calls` ends it.

        A store left without `close` (`create_store(...).drop()` one-liners) gives its share back when it is
        garbage-collected, through the finalizer.
        """
        with self._lease_lock:
            if self._client is None:
                self._client = POOL.acquire(self._endpoint)
                self._loaded = False
                self._release = weakref.finalize(self, POOL.release, self._endpoint)
            self._active += 1
            return self._client

    def _load(self, client: Any) -> None:
        with self._schema_lock:
            self._load_unlocked(client)

    def _load_unlocked(self, client: Any) -> None:
        if not client.has_collection(self._collection):
            raise StoreMissing(
                f"the Milvus collection {self._collection} of knowledge base {self._kb_name!r} is missing at "
                f"{self._endpoint.address}; rebuild it with: python init_database.py --recreate-vs -n {self._kb_name}"
            )
        client.load_collection(self._collection)
        self._loaded = True

    def _schema(self) -> Any:
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=MAX_ID_BYTES)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self._dim)
        schema.add_field("text", DataType.VARCHAR, max_length=MAX_TEXT_BYTES)
        schema.add_field("metadata", DataType.JSON)
        return schema

    def _index_params(self, client: Any) -> Any:
        params = client.prepare_index_params()
        extra = {"M": 16, "efConstruction": 200} if self._index_type == "HNSW" else {}
        params.add_index(field_name="vector", index_type=self._index_type, metric_type="COSINE", params=extra)
        return params

    def _search_params(self, limit: int) -> dict[str, Any]:
        params: dict[str, Any] = {"metric_type": "COSINE"}
        if self._index_type == "HNSW":
            params["params"] = {"ef": max(limit, 64)}  # HNSW needs ef >= limit
        return params

    def _check_dimension(self, client: Any) -> None:
        fields = client.describe_collection(self._collection).get("fields", [])
        dims = [f.get("params", {}).get("dim") for f in fields if f.get("name") == "vector"]
        if dims and int(dims[0]) != self._dim:
            raise StoreDimensionMismatch(
                f"Milvus collection {self._collection} holds {dims[0]}-dim vectors but the embedding model "
                f"gives {self._dim}; rebuild the knowledge base's vector store"
            )

    def _existing(self, client: Any, ids: list[str]) -> list[str]:
        """Which of `ids` are stored, in the given order."""
        wanted = _storable(ids)
        present: set[str] = set()
        for start in range(0, len(wanted), LOOKUP_BATCH):
            rows = self._query(client, in_list("id", wanted[start : start + LOOKUP_BATCH]), ["id"])
            present.update(row["id"] for row in rows)
        return [i for i in ids if i in present]

    def _query(self, client: Any, expression: str, fields: list[str]) -> list[dict[str, Any]]:
        rows = client.query(self._collection, filter=expression, output_fields=fields, consistency_level=_STRONG)
        return list(rows)

    def _insert(self, client: Any, batch: Batch) -> None:
        """Insert in slices; if one fails, the slices already in are deleted again (best effort)."""
        done: list[str] = []
        try:
            for start in range(0, len(batch.ids), INSERT_BATCH):
                stop = start + INSERT_BATCH
                rows = [
                    {"id": i, "vector": v, "text": t, "metadata": m}
                    for i, v, t, m in zip(
                        batch.ids[start:stop],
                        batch.vectors[start:stop],
                        batch.texts[start:stop],
                        batch.metadatas[start:stop],
                        strict=True,
                    )
                ]
                client.insert(self._collection, rows)
                done.extend(batch.ids[start:stop])
        except MilvusException:
            self._undo_insert(client, done)
            raise

    def _undo_insert(self, client: Any, ids: list[str]) -> None:
        try:
            for start in range(0, len(ids), LOOKUP_BATCH):
                client.delete(self._collection, filter=in_list("id", ids[start : start + LOOKUP_BATCH]))
        except MilvusException as exc:  # the insert error is the one to report; this one goes to the log
            log.error("could not remove %d half-added chunks from %s: %s", len(ids), self._collection, exc.message)


def open_store(spec: StoreSpec, options: MilvusOptions) -> MilvusStore:
    """The registry's entry point (server.vectorstores.registry)."""
    endpoint = endpoint_from(options)
    return MilvusStore(endpoint, spec.collection, spec.dim, index_type=options.index_type, kb_name=spec.kb_name)


def endpoint_from(options: MilvusOptions) -> Endpoint:
    """The connection target; a Lite path is made absolute so one database never gets two keys in the pool."""
    uri = options.uri
    if not uri:
        raise ConfigError("vector_stores.milvus.uri is empty; set it to a Milvus Lite path or http://host:19530")
    token = options.token.get_secret_value() if options.token else None
    if "://" not in uri:
        uri = os.path.abspath(uri)
    return Endpoint(uri, token or None)


def _check_sizes(batch: Batch) -> None:
    for chunk_id in batch.ids:
        if len(chunk_id.encode()) > MAX_ID_BYTES or not is_writable(chunk_id):
            raise InvalidInput(f"Milvus ids must be at most {MAX_ID_BYTES} bytes of printable text: {chunk_id!r}")
    for text in batch.texts:
        size = len(text.encode())
        if size > MAX_TEXT_BYTES:
            raise InvalidInput(
                f"a chunk of {size} bytes is longer than Milvus' limit of {MAX_TEXT_BYTES} bytes (UTF-8); "
                f"use a smaller chunk_size: {text[:40]!r}..."
            )


def _storable(ids: Sequence[str]) -> list[str]:
    """Ids that `add` would accept; others cannot be stored, so there is no need to look them up."""
    return [i for i in ids if isinstance(i, str) and len(i.encode()) <= MAX_ID_BYTES and is_writable(i)]


def _hit(row: Mapping[str, Any]) -> Hit:
    entity = row["entity"]
    return Hit(str(row["id"]), entity["text"], dict(entity["metadata"]), cosine_to_score(row["distance"]))
