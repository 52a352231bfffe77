"""Guess whether a line of plain text is a title, for documents that have no Markdown headings."""

from __future__ import annotations

MAX_TITLE_LENGTH = 30
# A title does not contain a sentence end, and does not end like a clause that continues.
_SENTENCE_ENDS = frozenset("。！？!?…")
_CONTINUING_ENDS = frozenset("，,；;：:、.-—")


def is_possible_title(text: str) -> bool:
    """True for a short single line without sentence punctuation that is not mostly digits."""
    line = text.strip()
    if not line or "\n" in line or len(line) > MAX_TITLE_LENGTH:
        return False
    if any(char in _SENTENCE_ENDS for char in line) or line[-1] in _CONTINUING_ENDS:
        return False
    letters = sum(char.isalpha() for char in line)
    digits = sum(char.isdigit() for char in line)
    # "第3章 安装" is a title; "2023 12 01" or "– 17 –" (a page number) is not.
    return letters > 0 and digits * 2 <= len(line.replace(" ", ""))


def first_line_title(text: str) -> str:
    """The first non-blank line of ``text`` if it looks like a title, else an empty string."""
    for line in text.splitlines():
        if line.strip():
            return line.strip() if is_possible_title(line) else ""
    return ""
