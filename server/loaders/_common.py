"""Helpers shared by the format loaders."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from typing import Any

from server.documents import Document
from server.loaders.limits import Budget

_BLANK_RUNS = re.compile(r"\n{3,}")
_TRAILING_SPACE = re.compile(r"[ \t\u3000]+\n")


def clean_text(text: str) -> str:
    """Drop trailing spaces on lines and collapse runs of blank lines; strip the ends."""
    text = _TRAILING_SPACE.sub("\n", text.replace("\r\n", "\n").replace("\r", "\n"))
    return _BLANK_RUNS.sub("\n\n", text).strip()


def make_doc(text: str, source: str, **metadata: Any) -> Document:
    return Document(page_content=text, metadata={"source": source, **metadata})


def cell_text(value: object) -> str:
    """Render one spreadsheet/CSV cell: whole floats without ".0", dates in ISO form."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value).strip()


def row_documents(
    rows: Iterable[tuple[int, Sequence[object]]], source: str, budget: Budget, **metadata: Any
) -> list[Document]:
    """One Document per non-empty row, "header: value" per line; the first non-empty row gives the headers.

    `rows` yields (row number, cells) pairs; the row number is recorded as metadata["row"].
    """
    headers: list[str] | None = None
    first_row = 0
    docs: list[Document] = []
    for number, raw in rows:
        budget.row(number)
        cells = [cell_text(value) for value in raw]
        if not any(cells):
            continue
        if headers is None:
            headers, first_row = cells, number
            continue
        lines = [f"{_header(headers, i)}: {cell}" for i, cell in enumerate(cells) if cell]
        docs.append(make_doc("\n".join(lines), source, row=number, **metadata))
    if not docs and headers is not None:  # a table with a single row: keep that row rather than lose it
        docs.append(make_doc(" | ".join(cell for cell in headers if cell), source, row=first_row, **metadata))
    return docs


def _header(headers: list[str], index: int) -> str:
    if index < len(headers) and headers[index]:
        return headers[index]
    return f"column {index + 1}"
