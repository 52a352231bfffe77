"""Tables in a PDF's text layer: found from where its text runs start, then rebuilt as Markdown tables from
pypdf's layout text of that page only (layout extraction costs more, so prose pages never pay for it).

A page holds a table when at least `_MIN_ROWS` consecutive lines each start two or more short text runs at x
positions they share (columns), and those are most of the line's runs. In the layout text, a table is a run of
such lines whose cells (split at 2+ spaces) start at the header's columns and hold a few words each; a page whose
layout text holds none keeps its plain text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from server.loaders._common import markdown_table

_MIN_ROWS = 3
_MAX_RUN_CHARS = 40  # a text run longer than this is prose, not a table cell
_X_TOLERANCE = 3.0  # points: runs starting this close share a column
_Y_TOLERANCE = 2.0  # points: runs this close in height stand on one line
_CELL_GAP = re.compile(r"\S(?:.*?\S)?(?=\s{2,}|\s*$)")
_CHAR_TOLERANCE = 2  # layout characters: cells starting this close share a column
_MAX_CELL_WORDS = 4  # the median cell of a table holds no more words than this


@dataclass
class TextRuns:
    """The start of each text run shown on a page (pypdf's visitor_text), to tell table pages from prose."""

    starts: list[tuple[float, float]] = field(default_factory=list)

    def visit(self, text: str, cm: Sequence[float], tm: Sequence[float], _font: Any, _size: Any) -> None:
        # Runs of whole lines of prose (a two-column page) are not cells; only short runs count.
        if text.strip() and len(text) <= _MAX_RUN_CHARS:
            x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
            y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
            self.starts.append((x, y))

    def tabular(self) -> bool:
        rows = _rows(self.starts)
        streak = 0
        previous: list[float] = []
        for xs in rows:
            aligned = sum(1 for x in xs if _near(x, previous, _X_TOLERANCE))
            # Most runs of a table row start a column; a line of prose set word by word has a few column starts
            # among many other runs.
            shared = aligned >= 2 and aligned * 2 >= len(xs)
            streak = streak + 1 if shared else (1 if len(xs) >= 2 else 0)
            if streak >= _MIN_ROWS:
                return True
            previous = xs
        return False


def _rows(starts: list[tuple[float, float]]) -> list[list[float]]:
    rows: list[tuple[float, list[float]]] = []
    for x, y in sorted(starts, key=lambda start: -start[1]):
        if rows and abs(rows[-1][0] - y) <= _Y_TOLERANCE:
            rows[-1][1].append(x)
        else:
            rows.append((y, [x]))
    return [sorted(set(round(x, 1) for x in xs)) for _, xs in rows]


def _near(value: float, others: Sequence[float], tolerance: float) -> bool:
    return any(abs(value - other) <= tolerance for other in others)


def layout_tables(text: str) -> str | None:
    """Layout text with its aligned tables as Markdown tables and every other line's spacing collapsed; None when
    it holds no table (the columns were prose: the plain text reads those in a better order)."""
    lines = text.split("\n")
    out: list[str] = []
    found = False
    index = 0
    while index < len(lines):
        end = _table_end(lines, index)
        if end - index >= _MIN_ROWS and _short_cells(lines[index:end]):
            out.extend(["", *markdown_table(_cells(lines[index:end])), ""])
            found = True
            index = end
        else:
            out.append(" ".join(lines[index].split()))
            index += 1
    return "\n".join(out) if found else None


def _spans(line: str) -> list[tuple[int, str]]:
    return [(match.start(), match.group()) for match in _CELL_GAP.finditer(line)]


def _table_end(lines: list[str], start: int) -> int:
    """Where the table that starts at `start` ends (== start: none starts there)."""
    header = [position for position, _ in _spans(lines[start])]
    if len(header) < 2:
        return start
    end = start + 1
    while end < len(lines):
        spans = _spans(lines[end])
        if len(spans) < max(2, len(header) / 2):
            break
        if not all(_near(position, header, _CHAR_TOLERANCE) for position, _ in spans):
            break
        end += 1
    return end


def _short_cells(lines: list[str]) -> bool:
    """Table cells hold a few words; the columns of a two-column page hold whole lines of prose."""
    words = sorted(len(cell.split()) for line in lines for _, cell in _spans(line))
    return words[len(words) // 2] <= _MAX_CELL_WORDS


def _cells(lines: list[str]) -> list[list[str]]:
    columns = [position for position, _ in _spans(lines[0])]
    rows = []
    for line in lines:
        row = [""] * len(columns)
        for position, cell in _spans(line):
            nearest = min(range(len(columns)), key=lambda i: abs(columns[i] - position))
            row[nearest] = f"{row[nearest]} {cell}".strip()
        rows.append(row)
    return rows
