"""Markdown pipe tables inside a text: found, kept whole in one chunk when they fit, else split between rows with
the header (and its rule line) repeated at the top of every chunk, so each chunk still says what its columns are.

Loaders write tables they find (docx, pptx, html, epub) in this form; Markdown files bring their own. A table is a
row line holding "|", a rule line ("| --- | :-: |") under it, and the row lines that follow.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from server.splitter.recursive import chunk_length

_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$")


@dataclass(frozen=True)
class Block:
    """A run of prose, or a table (`header` holds its header and rule lines, `rows` the rest)."""

    text: str
    header: str = ""
    rows: tuple[str, ...] = ()

    @property
    def is_table(self) -> bool:
        return bool(self.header)


def blocks(text: str) -> list[Block]:
    """The text cut into prose and tables, in order; a text without tables is one prose block."""
    lines = text.split("\n")
    found: list[Block] = []
    prose: list[str] = []
    index = 0
    while index < len(lines):
        if _starts_table(lines, index):
            end = index + 2
            while end < len(lines) and "|" in lines[end] and lines[end].strip():
                end += 1
            if prose:
                found.append(Block("\n".join(prose)))
                prose = []
            header = "\n".join(lines[index : index + 2])
            rows = tuple(lines[index + 2 : end])
            found.append(Block("\n".join(lines[index:end]), header, rows))
            index = end
        else:
            prose.append(lines[index])
            index += 1
    if prose:
        found.append(Block("\n".join(prose)))
    return [block for block in found if block.text.strip()]


def _starts_table(lines: list[str], index: int) -> bool:
    return index + 1 < len(lines) and "|" in lines[index] and bool(_RULE.match(lines[index + 1]))


def split_table(table: Block, chunk_size: int, split_text: Callable[[str, int], list[str]]) -> list[str]:
    """The table whole when it fits `chunk_size`, else chunks of whole rows under the repeated header.

    A row too long to fit under the header is cut by `split_text(row, room)`, every piece under the header. A
    header that takes more than half of `chunk_size` is not repeated: the table is split as prose then."""
    if chunk_length(table.text) <= chunk_size:
        return [table.text]
    room = chunk_size - chunk_length(table.header) - 1  # the line break after the header
    if room < chunk_size / 2:
        return split_text(table.text, chunk_size)
    chunks: list[str] = []
    current: list[str] = []
    used = 0.0
    for row in table.rows:
        length = chunk_length(row) + 1
        if current and used + length > room:
            chunks.append("\n".join([table.header, *current]))
            current, used = [], 0.0
        if length > room:
            chunks.extend(f"{table.header}\n{piece}" for piece in split_text(row, int(room)))
            continue
        current.append(row)
        used += length
    if current:
        chunks.append("\n".join([table.header, *current]))
    return chunks
