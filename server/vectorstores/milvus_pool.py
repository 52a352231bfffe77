"""One shared MilvusClient per (uri, token) in this process, closed when its last store lets go of it.

Why share: a Milvus Lite database (`*.db`, a folder in milvus-lite 3) is served by an in-process gRPC server
that holds an exclusive lock on the folder, one server per path. Every store of every KB on that path must go
through the same server, and closing the server is the only way to free the folder for another process (say
`python init_database.py` after the API stopped). So the pool counts users: the last `release` closes the client
and, for Milvus Lite, stops the local server, which unlocks the folder. Whatever is still open at interpreter
exit is closed by an atexit hook (milvus-lite also stops its servers at exit).

Two *processes* can never open the same Milvus Lite database at once: the second gets StoreUnavailable saying
so. Point `vector_stores.milvus.uri` at a Milvus server to share vectors between processes.
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pymilvus import MilvusClient
from pymilvus.exceptions import MilvusException

from server.errors import ConfigError, StoreUnavailable

log = logging.getLogger(__name__)

# How long to wait for a Milvus server to answer before giving up; searches must not hang on a dead server.
CONNECT_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Endpoint:
    uri: str  # a Milvus Lite path ending in .db, or http(s)://host:port
    token: str | None = None

    @property
    def local(self) -> bool:
        return "://" not in self.uri

    @property
    def address(self) -> str:
        """The uri without any user:password part, safe for messages and logs."""
        if self.local:
            return self.uri
        parts = urlsplit(self.uri)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}"

    def redact(self, text: str) -> str:
        """`text` with the token and the full uri (which may carry credentials) replaced."""
        if self.token:
            text = text.replace(self.token, "***")
        return text.replace(self.uri, self.address)


class _Slot:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.users = 0


class ClientPool:
    """Reference-counted clients; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[Endpoint, _Slot] = {}
        self._atexit_registered = False
        self._schema_locks: dict[tuple[Endpoint, str], threading.Lock] = {}

    def schema_lock(self, endpoint: Endpoint, collection: str) -> threading.Lock:
        """Serialises creating, loading and dropping one collection in this process.

        Milvus Lite loads a collection by opening files in its folder; a drop running at the same moment (a KB
        deleted while a search first opens it) fails half-way with "Directory not empty".
        """
        with self._lock:
            return self._schema_locks.setdefault((endpoint, collection), threading.Lock())

    def acquire(self, endpoint: Endpoint) -> Any:
        """A connected MilvusClient for `endpoint`; pair every call with `release`."""
        # Connecting under the lock keeps two threads from starting two Lite servers on one path; it takes at
        # most CONNECT_TIMEOUT_S, and only while a connection is first made.
        with self._lock:
            slot = self._slots.get(endpoint)
            if slot is None:
                slot = _Slot(_connect(endpoint))
                self._slots[endpoint] = slot
                if not self._atexit_registered:
                    atexit.register(self.close_all)
                    self._atexit_registered = True
            slot.users += 1
            return slot.client

    def release(self, endpoint: Endpoint) -> None:
        with self._lock:
            slot = self._slots.get(endpoint)
            if slot is None:
                return
            slot.users -= 1
            if slot.users > 0:
                return
            del self._slots[endpoint]
            _disconnect(endpoint, slot.client)

    def users(self, endpoint: Endpoint) -> int:
        with self._lock:
            slot = self._slots.get(endpoint)
            return slot.users if slot else 0

    def close_all(self) -> None:
        with self._lock:
            slots, self._slots = self._slots, {}
            for endpoint, slot in slots.items():
                _disconnect(endpoint, slot.client)


POOL = ClientPool()


def _connect(endpoint: Endpoint) -> Any:
    if endpoint.local:
        _prepare_lite_path(endpoint.uri)
    try:
        return MilvusClient(uri=endpoint.uri, token=endpoint.token or "", timeout=CONNECT_TIMEOUT_S)
    except MilvusException as exc:
        if endpoint.local:
            raise _lite_unavailable(Path(endpoint.uri), endpoint.redact(str(exc.message))) from None
        raise StoreUnavailable(
            f"cannot reach milvus at {endpoint.address}: {endpoint.redact(str(exc.message))}; start the Milvus "
            "server or fix vector_stores.milvus.uri (and token)"
        ) from None


def _prepare_lite_path(uri: str) -> None:
    path = Path(uri)
    if path.suffix != ".db":
        raise ConfigError(
            f"vector_stores.milvus.uri {uri!r} is neither http(s)://host:port nor a Milvus Lite path ending in .db"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnavailable(
            f"cannot create the folder for the Milvus Lite database {path.name}: {exc.strerror or exc}"
        ) from exc


def _lite_unavailable(path: Path, reason: str) -> StoreUnavailable:
    if _locked_elsewhere(path):
        return StoreUnavailable(
            f"{path.name} is in use by another process; stop the API or point "
            "vector_stores.milvus.uri at a Milvus server"
        )
    reason = reason.replace(str(path), path.name)
    return StoreUnavailable(
        f"cannot open the Milvus Lite database {path.name}: {reason}; the log names the cause "
        "(a milvus.db file from an older milvus-lite cannot be read by milvus-lite 3)"
    )


def _locked_elsewhere(path: Path) -> bool:
    """Whether another process holds milvus-lite's LOCK on the database folder (checked only after a failure)."""
    lock_file = path / "LOCK"
    if sys.platform == "win32" or not lock_file.is_file():
        return False
    import fcntl

    try:
        with lock_file.open("rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            fcntl.flock(handle, fcntl.LOCK_UN)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def _disconnect(endpoint: Endpoint, client: Any) -> None:
    try:
        client.close()
    except MilvusException as exc:
        log.warning("closing the milvus client for %s failed: %s", endpoint.address, endpoint.redact(str(exc)))
    if endpoint.local:
        from milvus_lite import server_manager_instance

        server_manager_instance.release_server(endpoint.uri)
