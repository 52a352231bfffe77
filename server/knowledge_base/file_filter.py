"""Which files of a knowledge base a search may retrieve: the user's filter plus the files' enabled flags.

Design: the registry is the one place that knows a file's tags, extension, dates and enabled flag, so a filter is
resolved there into an allow-list of file names, which each store applies inside its search as
`where={"source": AnyOf(names)}` (FAISS: an IDSelector; Milvus: a boolean expression; pgvector: a WHERE). The
alternative, copying tags and the flag into every chunk's metadata, would turn a one-row tag edit into a rewrite
of every chunk of the file in every backend, with a registry and a store to keep in step across crashes; the
allow-list keeps tag edits and enable/disable a single registry update that the next search sees.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from server.errors import InvalidFilter
from server.vectorstores.base import AnyOf

MAX_TAGS = 64
MAX_TAG_CHARS = 64


@dataclass(frozen=True)
class FileFacts:
    """What a filter looks at in one registered file."""

    file_name: str
    ext: str
    tags: Sequence[str]
    mtime: float  # the file's modification time, seconds since the epoch
    created_at: datetime  # when the file was added to the knowledge base
    enabled: bool


@dataclass(frozen=True)
class FileFilter:
    """Every given condition must hold; an empty tuple or None means the condition is not asked for."""

    tags_any: tuple[str, ...] = ()  # at least one of these tags
    tags_all: tuple[str, ...] = ()  # every one of these tags
    file_names: tuple[str, ...] = ()  # one of these names (paths inside the KB)
    pattern: str = ""  # a glob on the name, e.g. "manuals/*.pdf" (`*` also crosses "/")
    extensions: tuple[str, ...] = ()  # ".pdf" or "pdf", any case
    modified_after: datetime | None = None
    modified_before: datetime | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

    def __post_init__(self) -> None:
        for low, high, what in (
            (self.modified_after, self.modified_before, "modified"),
            (self.created_after, self.created_before, "created"),
        ):
            if low is not None and high is not None and _utc(low) > _utc(high):
                raise InvalidFilter(f"filter.{what}_after is later than filter.{what}_before; swap them")

    @property
    def empty(self) -> bool:
        return self == FileFilter()

    def admits(self, file: FileFacts) -> bool:
        """Whether `file` meets every condition (its enabled flag is not looked at here)."""
        return self._by_name(file) and self._by_tags(file) and self._by_dates(file)

    def _by_name(self, file: FileFacts) -> bool:
        if self.file_names and file.file_name not in self.file_names:
            return False
        if self.pattern and not fnmatch.fnmatchcase(file.file_name, self.pattern):
            return False
        wanted = {_extension(ext) for ext in self.extensions}
        return not wanted or _extension(file.ext) in wanted

    def _by_tags(self, file: FileFacts) -> bool:
        tags = set(file.tags)
        if self.tags_any and tags.isdisjoint(self.tags_any):
            return False
        return tags.issuperset(self.tags_all)

    def _by_dates(self, file: FileFacts) -> bool:
        modified = datetime.fromtimestamp(file.mtime, UTC)
        created = _utc(file.created_at)
        return _within(modified, self.modified_after, self.modified_before) and _within(
            created, self.created_after, self.created_before
        )


def allowed_sources(files: Iterable[FileFacts], wanted: FileFilter | None) -> AnyOf | None:
    """The allow-list for a store's `where["source"]`; None when every chunk may be retrieved."""
    facts = list(files)
    if (wanted is None or wanted.empty) and all(file.enabled for file in facts):
        return None
    admits = wanted.admits if wanted is not None else lambda _file: True
    return AnyOf(file.file_name for file in facts if file.enabled and admits(file))


def checked_tags(tags: Iterable[str]) -> list[str]:
    """Trimmed, de-duplicated tags in the given order; refuses empty, over-long or too many tags."""
    cleaned = list(dict.fromkeys(tag.strip() for tag in tags))
    if any(not tag for tag in cleaned):
        raise InvalidFilter('a tag is empty; give tags as non-empty strings, e.g. ["manual", "2024"]')
    if any(len(tag) > MAX_TAG_CHARS for tag in cleaned):
        raise InvalidFilter(f"a tag is longer than {MAX_TAG_CHARS} characters; shorten it")
    if len(cleaned) > MAX_TAGS:
        raise InvalidFilter(f"a file takes at most {MAX_TAGS} tags, got {len(cleaned)}")
    return cleaned


def _extension(ext: str) -> str:
    return "." + ext.strip().lower().lstrip(".")


def _utc(moment: datetime) -> datetime:
    """Naive datetimes (SQLite returns them, users send them) are taken as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _within(moment: datetime, after: datetime | None, before: datetime | None) -> bool:
    return (after is None or moment >= _utc(after)) and (before is None or moment <= _utc(before))
