"""PostgreSQL + pgvector vector store: one table per knowledge base (and rebuild generation).

The table is named after the registry's ASCII collection name (never the KB name) and holds
`id text primary key, embedding vector(dim), text text, metadata jsonb`. Every value travels as a bound
parameter; the table name is checked against a strict pattern and quoted as an identifier. Each call is its own
transaction, so `flush()` has nothing to do.

The HNSW index (`USING hnsw (embedding vector_cosine_ops)`) is built once the table holds `index_min_rows`
chunks (20,000 by default), by the `add` that gets it there. Below that, searches are exact scans, which take
about as long as an HNSW search at that size (tens of ms), while HNSW makes every insert about 100x slower (10k
chunks of dim 384: under a second without it, 30-45 s with it on a small machine) and gives approximate
answers. Building the index over loaded rows is also several times faster than growing it row by row.

HNSW is approximate. With the index, searches raise `hnsw.ef_search` to at least 100 (and to `top_k`) and turn
on pgvector's iterative scan (0.8+) in strict order, so a `where` filter still fills `top_k` and results stay
sorted.

Stores on the same URL share one SQLAlchemy engine (and its connection pool) per process (pg_engine.py).
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from pgvector.sqlalchemy import VECTOR
from psycopg import sql
from psycopg.types.json import Jsonb
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    Table,
    Text,
    any_,
    func,
    literal,
    select,
    text,
)
from sqlalchemy import delete as sql_delete
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.exc import DBAPIError

from server.errors import (
    ConfigError,
    DuplicateChunkId,
    InvalidInput,
    StoreDimensionMismatch,
    StoreMissing,
    StoreNotConfigured,
    StoreUnavailable,
    ZhikuError,
)
from server.vectorstores.base import Hit, StoredChunk, Vectors, cosine_to_score
from server.vectorstores.checks import checked_batch, matches_nothing, plain_metadata, query_row, split_where
from server.vectorstores.pg_engine import describe_url, shared_engine

if TYPE_CHECKING:
    from server.vectorstores.registry import PgOptions, StoreSpec

TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
INDEX_MIN_ROWS = 20_000
MIN_EF_SEARCH = 100  # pgvector's default is 40; 100 buys recall for about 2x the (small) search time
_MAX_EF_SEARCH = 1000  # pgvector's upper limit; the iterative scan goes on past it when top_k needs more
_CREATE_LOCK = 0x7A68_696B_7500  # an advisory lock id that serialises create() across processes
_BUILD_MEMORY = "256MB"  # maintenance_work_mem for the index build: 100k chunks of dim 384 fit in memory
_VECTOR_FLAG = "zhiku_pgvector_registered"  # set in a pooled connection's info once its adapters know `vector`

_EXTENSION_VERSION = text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
_EXISTS = text("SELECT to_regclass(:name) IS NOT NULL")
_EMBEDDING_TYPE = text(
    "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
    "WHERE attrelid = to_regclass(:table) AND attname = 'embedding'"
)


def open_store(spec: StoreSpec, options: PgOptions) -> PgStore:
    """The registry's entry point (server.vectorstores.registry)."""
    missing = options.missing()
    if missing or not options.uri:
        raise StoreNotConfigured(missing or "vector_stores.pg.uri is not set")
    return PgStore(shared_engine(options.uri), spec.collection, spec.dim, kb_name=spec.kb_name)


class PgStore:
    """One knowledge base's vectors in table `table` of the database `engine` points at."""

    def __init__(
        self, engine: Engine, table: str, dim: int, *, kb_name: str = "KB", index_min_rows: int = INDEX_MIN_ROWS
    ) -> None:
        if not TABLE_NAME.match(table):
            raise InvalidInput(f"pg table name {table!r} must match {TABLE_NAME.pattern}")
        if dim <= 0:
            raise InvalidInput(f"vector dimension must be positive, got {dim}")
        self._engine = engine
        self._dim = dim
        self._kb_name = kb_name
        self._name = table
        self._index_min_rows = index_min_rows
        self._indexed = False  # known to have its HNSW index (never unset but by drop)
        self._table = Table(
            table,
            MetaData(),
            Column("id", Text, primary_key=True),
            Column("embedding", VECTOR(dim), nullable=False),
            Column("text", Text, nullable=False),
            Column("metadata", JSONB, nullable=False),
            quote=True,
        )

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def table(self) -> str:
        return self._name

    def create(self) -> None:
        with self._transaction("create the table") as conn:
            conn.execute(select(func.pg_advisory_xact_lock(_CREATE_LOCK)))
            _ensure_extension(conn)
            if conn.execute(_EXISTS, {"name": _quoted(self._name)}).scalar():
                self._check_dim(conn)
            else:
                self._table.create(conn)
            indexed = self._index_when_big(conn)
        self._indexed = indexed

    def drop(self) -> None:
        with self._transaction("drop the table") as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {_quoted(self._name)}")
        self._indexed = False

    @property
    def indexed(self) -> bool:
        """Whether the table has its HNSW index (as far as this instance has seen)."""
        return self._indexed

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
        with self._transaction("add chunks") as conn:
            id_col = self._table.c["id"]
            clash = conn.execute(select(id_col).where(id_col == any_(_text_array(batch.ids))).limit(3)).scalars()
            if found := list(clash):
                raise DuplicateChunkId(f"ids already exist in the store, e.g. {found}")
            raw = _driver_connection(conn)
            copy_sql = sql.SQL("COPY {} (id, embedding, text, metadata) FROM STDIN (FORMAT BINARY)")
            with raw.cursor() as cursor, cursor.copy(copy_sql.format(sql.Identifier(self._name))) as copy:
                copy.set_types(["text", "vector", "text", "jsonb"])
                rows = zip(batch.ids, batch.vectors, batch.texts, batch.metadatas, strict=True)
                for chunk_id, vector, body, meta in rows:
                    copy.write_row((chunk_id, vector, body, Jsonb(meta)))
            indexed = self._indexed or self._index_when_big(conn)
        self._indexed = indexed
        return batch.ids

    def delete(self, ids: Sequence[str]) -> int:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return 0
        id_col = self._table.c["id"]
        with self._transaction("delete chunks") as conn:
            deleted = conn.execute(sql_delete(self._table).where(id_col == any_(_text_array(wanted))).returning(id_col))
            return len(deleted.all())

    def search(
        self,
        vector: Vectors,
        top_k: int,
        score_threshold: float = 0.0,
        where: Mapping[str, Any] | None = None,
    ) -> list[Hit]:
        query = query_row(vector, self._dim, top_k)[0]
        if matches_nothing(where):
            return []
        columns = self._table.c
        distance = columns["embedding"].cosine_distance(query)
        statement = select(columns["id"], columns["text"], columns["metadata"], distance).order_by(distance)
        equal, member = split_where(where)
        if equal:
            statement = statement.where(columns["metadata"].contains(plain_metadata([equal])[0]))
        for key, allowed in member.items():
            # `->>` also turns a number into text; an AnyOf matches strings only, as in every backend.
            value = columns["metadata"][key]
            statement = statement.where(
                func.jsonb_typeof(value) == "string",
                value.astext == any_(_text_array(sorted(allowed.values))),
            )
        with self._transaction("search") as conn:
            ef_search = min(max(MIN_EF_SEARCH, top_k), _MAX_EF_SEARCH)
            conn.execute(
                select(
                    func.set_config("hnsw.ef_search", str(ef_search), True),
                    func.set_config("hnsw.iterative_scan", "strict_order", True),
                )
            )
            rows = conn.execute(statement.limit(top_k)).all()
        scored = ((row[0], row[1], row[2], cosine_to_score(1.0 - row[3])) for row in rows)
        return [Hit(cid, body, meta, score) for cid, body, meta, score in scored if score >= score_threshold]

    def get(self, ids: Sequence[str]) -> list[StoredChunk]:
        if not ids:
            return []
        columns = self._table.c
        statement = select(columns["id"], columns["text"], columns["metadata"])
        with self._transaction("read chunks") as conn:
            rows = conn.execute(statement.where(columns["id"] == any_(_text_array(list(ids))))).all()
        found = {row[0]: (row[1], row[2]) for row in rows}
        # A fresh dict per returned chunk, so callers may edit what they get.
        return [StoredChunk(i, found[i][0], copy.deepcopy(found[i][1])) for i in ids if i in found]

    def vectors(self, ids: Sequence[str]) -> dict[str, Vectors]:
        if not ids:
            return {}
        columns = self._table.c
        statement = select(columns["id"], columns["embedding"]).where(columns["id"] == any_(_text_array(list(ids))))
        with self._transaction("read vectors") as conn:
            rows = conn.execute(statement).all()
        return {row[0]: np.asarray(row[1], dtype=np.float32) for row in rows}

    def count(self) -> int:
        with self._transaction("count chunks") as conn:
            return int(conn.execute(select(func.count()).select_from(self._table)).scalar_one())

    def flush(self) -> None:
        """Nothing to do: every call commits its own transaction."""

    def close(self) -> None:
        """Nothing to release: the shared engine's pool outlives the store (see dispose_engine)."""

    # -- internals -------------------------------------------------------------------------------------------

    @contextmanager
    def _transaction(self, doing: str) -> Iterator[Connection]:
        try:
            with self._engine.begin() as conn:
                yield conn
        except ZhikuError:
            raise
        except (DBAPIError, psycopg.Error) as exc:
            raise self._translate(exc, doing) from exc

    def _translate(self, exc: DBAPIError | psycopg.Error, doing: str) -> ZhikuError:
        error = exc.orig if isinstance(exc, DBAPIError) else exc
        detail = _detail(error)
        state = getattr(error, "sqlstate", None)
        where = describe_url(self._engine.url)
        if isinstance(error, psycopg.OperationalError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated):
            return StoreUnavailable(
                f"vector store 'pg' at {where} is unreachable ({detail}); "
                "check that PostgreSQL is running and vector_stores.pg.uri is right"
            )
        if state == "42P01":
            return StoreMissing(
                f"pg table {self._name} of knowledge base {self._kb_name!r} is missing; "
                f"rebuild it with: python init_database.py --recreate-vs -n {self._kb_name}"
            )
        if state == "22000" and "dimensions" in detail:
            return self._dim_mismatch(detail)
        if state == "23505":  # another writer added one of these ids since the check in add()
            return DuplicateChunkId(f"ids already exist in the store ({detail})")
        if isinstance(error, psycopg.DataError):
            return InvalidInput(
                f"PostgreSQL cannot store these chunks ({detail}); text and metadata must be valid Unicode "
                "without NUL characters"
            )
        return StoreUnavailable(f"vector store 'pg' at {where} could not {doing}: {detail}")

    def _index_when_big(self, conn: Connection) -> bool:
        """Build the HNSW index once the table is big enough; returns whether it exists now."""
        index = _index_name(self._name)
        if conn.execute(_EXISTS, {"name": _quoted(index)}).scalar():
            return True
        if conn.execute(select(func.count()).select_from(self._table)).scalar_one() < self._index_min_rows:
            return False
        conn.execute(select(func.pg_advisory_xact_lock(_CREATE_LOCK)))  # another process may be at it too
        conn.execute(select(func.set_config("maintenance_work_mem", _BUILD_MEMORY, True)))
        conn.exec_driver_sql(
            f"CREATE INDEX IF NOT EXISTS {_quoted(index)} ON {_quoted(self._name)} "
            "USING hnsw (embedding vector_cosine_ops)"
        )
        return True

    def _check_dim(self, conn: Connection) -> None:
        found = conn.execute(_EMBEDDING_TYPE, {"table": _quoted(self._name)}).scalar()
        if found != f"vector({self._dim})":
            raise self._dim_mismatch(f"its embedding column is {found}")

    def _dim_mismatch(self, detail: str) -> StoreDimensionMismatch:
        return StoreDimensionMismatch(
            f"pg table {self._name} of knowledge base {self._kb_name!r} does not hold {self._dim}-dim vectors "
            f"({detail}); rebuild it with: python init_database.py --recreate-vs -n {self._kb_name}"
        )


def _ensure_extension(conn: Connection) -> None:
    """Create pgvector in this database when missing; needs the CREATE privilege (or a superuser) once."""
    version = conn.execute(_EXTENSION_VERSION).scalar()
    if version is None:
        try:
            with conn.begin_nested():
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
        except DBAPIError as exc:
            database = conn.engine.url.database
            raise StoreUnavailable(
                f"could not create the pgvector extension in database {database!r} ({_detail(exc.orig)}); "
                "install pgvector 0.8+ on the server and have a superuser run there: CREATE EXTENSION vector;"
            ) from exc
        version = conn.execute(_EXTENSION_VERSION).scalar()
    if tuple(int(part) for part in str(version).split(".")[:2]) < (0, 8):
        raise StoreUnavailable(f"pgvector {version} is too old; upgrade it to 0.8+: ALTER EXTENSION vector UPDATE;")


def _detail(error: BaseException | None) -> str:
    """The server's message (with its HINT) on one line."""
    return " ".join(str(error).split()) or type(error).__name__


def _index_name(table: str) -> str:
    """`<table>_hnsw`, kept within PostgreSQL's 63-character names."""
    if len(table) <= 58:
        return f"{table}_hnsw"
    return f"{table[:45]}_{hashlib.sha1(table.encode()).hexdigest()[:12]}_hnsw"


def _quoted(identifier: str) -> str:
    """Only for names that matched TABLE_NAME (plus a suffix): they hold no quote to escape."""
    return f'"{identifier}"'


def _text_array(values: list[str]) -> Any:
    return literal(values, ARRAY(Text))


def _driver_connection(conn: Connection) -> psycopg.Connection[Any]:
    """The psycopg connection under `conn`, taught the `vector` type once per pooled connection."""
    fairy = conn.connection
    raw = fairy.driver_connection
    if not isinstance(raw, psycopg.Connection):
        raise ConfigError("the pg vector store needs the psycopg 3 driver (postgresql+psycopg://)")
    if not fairy.info.get(_VECTOR_FLAG):
        register_vector(raw)
        fairy.info[_VECTOR_FLAG] = True
    return raw
