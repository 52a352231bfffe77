"""Per-KB API keys: issued by the admin, stored as a SHA-256 of the secret, shown once, revocable, expiring.

A key's secret is 32 random bytes (`zk-` + URL-safe base64), so a plain SHA-256 is enough to store it: there is
nothing to brute-force as there would be with a password. Looking a key up by its hash takes one indexed query;
the answers are cached for a few seconds so a burst of searches does not query the registry for each.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.auth.principal import RIGHTS, Principal, Right
from server.db.engine import session_scope
from server.db.models import ApiKey, iso_utc, utcnow
from server.errors import ApiKeyNotFound, ApiKeyRevoked, InvalidInput, KeysDisabled, Unauthorized

SECRET_PREFIX = "zk-"
CACHE_S = 5.0
CACHE_MAX = 10_000


@dataclass(frozen=True)
class KeyView:
    """A key as listed: never its secret, only the first characters to tell keys apart."""

    id: str
    name: str
    prefix: str
    knowledge_bases: list[str]
    right: str
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    active: bool


@dataclass(frozen=True)
class NewKey(KeyView):
    """A key just created: `key` is its secret, returned this once and never again."""

    key: str


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class KeyService:
    def __init__(self, sessions: sessionmaker[Session], *, enabled: bool) -> None:
        self._sessions = sessions
        self._enabled = enabled  # scoped keys mean something only when the API needs a key at all
        self._cache: dict[str, tuple[float, Principal | str]] = {}  # hash → (until, principal or refusal)
        self._lock = threading.Lock()

    def create(self, name: str, kbs: Sequence[str], right: Right, expires_at: datetime | None = None) -> NewKey:
        if not self._enabled:
            raise KeysDisabled(
                "set api.api_key (the admin key) first: while the API needs no key, a scoped key would limit nothing"
            )
        _check(kbs, right, expires_at)
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        row = ApiKey(
            name=name, prefix=secret[:10], secret_hash=digest(secret), kbs=sorted(set(kbs)), right=right,
            expires_at=expires_at,
        )  # fmt: skip
        with session_scope(self._sessions) as session:
            session.add(row)
            session.flush()
            return NewKey(**asdict(_view(row)), key=secret)

    def list(self) -> list[KeyView]:
        with session_scope(self._sessions) as session:
            return [_view(row) for row in session.scalars(select(ApiKey).order_by(ApiKey.created_at))]

    def revoke(self, key_id: str) -> KeyView:
        with session_scope(self._sessions) as session:
            row = session.get(ApiKey, key_id)
            if row is None:
                raise ApiKeyNotFound(f"no API key with id {key_id!r}; list them with GET /api_keys")
            if row.revoked_at is not None:
                raise ApiKeyRevoked(f"API key {key_id!r} was already revoked")
            row.revoked_at = utcnow()
            view = _view(row)
        with self._lock:
            self._cache.clear()  # the revocation holds from the next request on
        return view

    def authenticate(self, secret: str) -> Principal:
        """The principal of a scoped key; raises Unauthorized for an unknown, revoked or expired one."""
        hashed = digest(secret)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(hashed)
        if cached is None or cached[0] < now:
            cached = (now + CACHE_S, self._look_up(hashed))
            with self._lock:
                if len(self._cache) >= CACHE_MAX:  # random wrong keys must not grow it without end
                    self._cache.clear()
                self._cache[hashed] = cached
        if isinstance(cached[1], str):
            raise Unauthorized(cached[1])
        return cached[1]

    def _look_up(self, hashed: str) -> Principal | str:
        with session_scope(self._sessions) as session:
            row = session.scalar(select(ApiKey).where(ApiKey.secret_hash == hashed))
            if row is None:
                return "unknown API key: send the admin key (api.api_key) or a key it issued"
            if row.revoked_at is not None:
                return "this API key was revoked; ask the admin for a new one"
            if row.expires_at is not None and _aware(row.expires_at) <= utcnow():
                return f"this API key expired at {iso_utc(row.expires_at)}; ask the admin for a new one"
            return Principal(f"key:{row.id}", frozenset(row.kbs), "write" if row.right == "write" else "read")


def _check(kbs: Sequence[str], right: str, expires_at: datetime | None) -> None:
    if not kbs or any(not isinstance(name, str) or not name for name in kbs):
        raise InvalidInput("knowledge_bases: list the names of the knowledge bases this key may reach (at least one)")
    if right not in RIGHTS:
        raise InvalidInput(f"right must be one of {', '.join(RIGHTS)}, not {right!r}")
    if expires_at is not None and _aware(expires_at) <= utcnow():
        raise InvalidInput("expires_at is in the past; give a future time (ISO 8601) or none for a key that lasts")


def _aware(moment: datetime) -> datetime:
    """SQLite hands timestamps back without their zone; they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _view(row: ApiKey) -> KeyView:
    expired = row.expires_at is not None and _aware(row.expires_at) <= utcnow()
    return KeyView(
        id=row.id, name=row.name, prefix=row.prefix, knowledge_bases=list(row.kbs), right=row.right,
        created_at=iso_utc(row.created_at), expires_at=iso_utc(row.expires_at) if row.expires_at else None,
        revoked_at=iso_utc(row.revoked_at) if row.revoked_at else None,
        active=row.revoked_at is None and not expired,
    )  # fmt: skip
