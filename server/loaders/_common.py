"""Helpers shared by the format loaders."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
from collections.abc import Iterable, Iterator, Sequence
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
    """One Document per non-empty row, "header: value" per line.

    The header row is the first non-empty one, unless narrower rows (a title, a unit note) stand above a wider
    table: those become metadata["table_title"] and the header is the first row about as wide as the table.
    `rows` yields (row number, cells) pairs; the row number is recorded as metadata["row"].
    """
    counted = ((number, [cell_text(value) for value in raw]) for number, raw in _budgeted(rows, budget))
    filled = ((number, cells) for number, cells in counted if any(cells))
    lookahead = list(itertools.islice(filled, _HEADER_LOOKAHEAD))
    if not lookahead:
        return []
    titles, (first_row, headers), body = _split_header(lookahead)
    if titles:
        metadata = {**metadata, "table_title": " ".join(titles)}
    docs = []
    for number, cells in itertools.chain(body, filled):
        lines = [f"{_header(headers, i)}: {cell}" for i, cell in enumerate(cells) if cell]
        docs.append(make_doc("\n".join(lines), source, row=number, **metadata))
    if not docs:  # a table with a single row: keep that row rather than lose it
        docs.append(make_doc(" | ".join(cell for cell in headers if cell), source, row=first_row, **metadata))
    return docs


_HEADER_LOOKAHEAD = 12  # rows looked at to tell titles above a table from its header


def _budgeted(rows: Iterable[tuple[int, Sequence[object]]], budget: Budget) -> Iterator[tuple[int, Sequence[object]]]:
    for number, raw in rows:
        budget.row(number)
        yield number, raw


Row = tuple[int, list[str]]


def _split_header(first: list[Row]) -> tuple[list[str], Row, list[Row]]:
    """(title lines, the header row, the rows after it) among the first non-empty rows."""
    width = max(_filled(cells) for _, cells in first)
    wide_enough = max(2, math.ceil(width * 0.6))
    for index, (_, cells) in enumerate(first):
        if width < 2 or _filled(cells) >= wide_enough:
            titles = [" ".join(dict.fromkeys(cell for cell in row if cell)) for _, row in first[:index]]
            return titles, first[index], first[index + 1 :]
    return [], first[0], first[1:]


def _filled(cells: list[str]) -> int:
    """Distinct non-empty cells: a title merged across the table (its value in every cell) counts once."""
    return len({cell for cell in cells if cell})


def _header(headers: list[str], index: int) -> str:
    if index < len(headers) and headers[index]:
        return headers[index]
    return f"column {index + 1}"


def markdown_table(rows: Sequence[Sequence[str]]) -> list[str]:
    """A table as Markdown pipe-table lines, its first row the header; the splitter keeps such tables whole, or
    splits them between rows with the header repeated (server/splitter/tables.py). Empty rows are left out."""
    kept = [[" ".join(cell.split()).replace("|", "\\|") for cell in row] for row in rows]
    kept = [row for row in kept if any(row)]
    if not kept:
        return []
    width = max(len(row) for row in kept)
    padded = [row + [""] * (width - len(row)) for row in kept]
    lines = ["| " + " | ".join(row) + " |" for row in padded]
    return [lines[0], "|" + " --- |" * width, *lines[1:]]
