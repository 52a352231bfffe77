"""The caller of a request, as the API key it sent makes it: the admin, a scoped key, or anyone (no key set)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Right = Literal["read", "write"]
RIGHTS: tuple[Right, ...] = ("read", "write")


@dataclass(frozen=True)
class Principal:
    """`kbs` None reaches every knowledge base with every right (the admin key, or an API without a key)."""

    actor: str  # "admin", "anonymous" or "key:<id>": what the audit log records
    kbs: frozenset[str] | None = None
    right: Right = "write"

    @property
    def is_admin(self) -> bool:
        return self.kbs is None

    def sees(self, kb_name: str) -> bool:
        return self.kbs is None or kb_name in self.kbs

    def may_write(self, kb_name: str) -> bool:
        return self.sees(kb_name) and self.right == "write"


ADMIN = Principal("admin")
ANONYMOUS = Principal("anonymous")  # the API has no key set: every request may do everything
