"""The `filter` object of search_docs, knowledge_base_chat and /v1/chat/completions, checked by pydantic so an
unknown key or a bad date is a 422 that names the field."""

from __future__ import annotations

import json
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from server.errors import InvalidFilter
from server.knowledge_base.file_filter import FileFilter

FILTER_HELP = (
    "which files may answer: tags_any, tags_all, file_names, pattern (glob), extensions, "
    "modified_after/before and created_after/before (ISO 8601; naive = UTC); disabled files never answer"
)


class SearchFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tags_any: list[str] = Field(default_factory=list, max_length=64, description="files with any of these tags")
    tags_all: list[str] = Field(default_factory=list, max_length=64, description="files with all of these tags")
    file_names: list[str] = Field(default_factory=list, max_length=10_000, description="paths inside the KB")
    pattern: str = Field("", max_length=1024, examples=["manuals/*.pdf"], description="a glob on the file name")
    extensions: list[str] = Field(default_factory=list, max_length=64, examples=[[".pdf", "md"]])
    modified_after: datetime | None = Field(None, description="file modified at or after (ISO 8601)")
    modified_before: datetime | None = None
    created_after: datetime | None = Field(None, description="file added to the KB at or after (ISO 8601)")
    created_before: datetime | None = None

    def file_filter(self) -> FileFilter:
        return FileFilter(
            tuple(self.tags_any),
            tuple(self.tags_all),
            tuple(self.file_names),
            self.pattern,
            tuple(self.extensions),
            self.modified_after,
            self.modified_before,
            self.created_after,
            self.created_before,
        )


def file_filter(body: SearchFilter | None) -> FileFilter | None:
    return body.file_filter() if body is not None else None


def parse_tags(text: str | None) -> list[str] | None:
    """An upload form's tags: a JSON list of strings, or comma-separated; None (or blank) when not given."""
    if text is None or not text.strip():
        return None
    if not text.lstrip().startswith("["):
        return [tag for tag in (part.strip() for part in text.split(",")) if tag]
    try:
        tags = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidFilter(f'tags look like a JSON list but do not parse ({exc.msg}); send e.g. ["a", "b"]') from exc
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise InvalidFilter('tags must be a JSON list of strings, e.g. ["manual", "2024"], or "manual, 2024"')
    return tags
