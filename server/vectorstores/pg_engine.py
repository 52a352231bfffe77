"""SQLAlchemy engines for the pg vector store: one per URI and process, shared by every store on it."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from server.errors import ConfigError

_CONNECT_TIMEOUT_S = 5  # an unreachable server fails in seconds, not at the OS's TCP timeout

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def make_engine(uri: str) -> Engine:
    """A new engine for `uri` (postgresql:// or postgresql+psycopg://); fails fast when the server is down."""
    url = _checked_url(uri)
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = _CONNECT_TIMEOUT_S
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def shared_engine(uri: str) -> Engine:
    """The process's engine for `uri`, made on first use."""
    with _engines_lock:
        engine = _engines.get(uri)
        if engine is None:
            engine = _engines[uri] = make_engine(uri)
        return engine


def dispose_engine(uri: str) -> None:
    """Close the pooled connections of `uri`'s shared engine and forget it (the next store makes a new one)."""
    with _engines_lock:
        engine = _engines.pop(uri, None)
    if engine is not None:
        engine.dispose()


def describe_url(url: URL) -> str:
    """host:port/database with no password, for messages."""
    host = url.host or str(url.query.get("host") or "localhost")
    return f"{host}:{url.port or 5432}/{url.database or ''} (user {url.username or '?'}, password hidden)"


def _checked_url(uri: str) -> URL:
    try:
        url = make_url(uri)
    except ArgumentError as exc:
        raise ConfigError(f"vector_stores.pg.uri is not a database URL ({exc}); use postgresql+psycopg://...") from exc
    if url.drivername == "postgresql":
        return url.set(drivername="postgresql+psycopg")
    if url.drivername != "postgresql+psycopg":
        shown = url.render_as_string(hide_password=True)
        raise ConfigError(f"vector_stores.pg.uri {shown} must start with postgresql+psycopg:// (psycopg 3)")
    return url
