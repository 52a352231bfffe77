"""Cut Markdown text into sections at ATX headings (``# 标题``), tracking the heading path of each section.

Lines inside fenced code blocks (``` or ~~~) are never headings, so a shell comment in a code sample does not
start a section.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEADING = re.compile(r"^(#{1,6})[ \t]+(\S.*?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


@dataclass(frozen=True)
class Section:
    """A heading line (empty for text before the first heading), the text under it, and its heading path."""

    headings: tuple[str, ...]
    heading_line: str
    body: str

    @property
    def text(self) -> str:
        """The heading line followed by the body, so the heading stays searchable in the first chunk."""
        if not self.heading_line:
            return self.body
        return f"{self.heading_line}\n{self.body}" if self.body else self.heading_line


class _FenceTracker:
    """Remembers whether the lines fed to it so far leave us inside a fenced code block."""

    def __init__(self) -> None:
        self._open: str | None = None

    def feed(self, line: str) -> bool:
        """Feed one line; return True if the line belongs to a code block (fence lines included)."""
        match = _FENCE.match(line)
        if self._open is None:
            if match:
                self._open = match.group(1)
            return match is not None
        if match and _closes(self._open, match.group(1), line):
            self._open = None
        return True


def _closes(opening: str, fence: str, line: str) -> bool:
    # A closing fence uses the opening character, at least as many times, and nothing else on the line.
    return fence[0] == opening[0] and len(fence) >= len(opening) and not line.strip().strip(opening[0])


def split_sections(text: str) -> list[Section]:
    """Split ``text`` at headings; a text without headings comes back as one section with no path."""
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    heading_line = ""
    body: list[str] = []
    fences = _FenceTracker()
    for line in text.splitlines():
        match = None if fences.feed(line) else _HEADING.match(line)
        if match is None:
            body.append(line)
            continue
        sections.append(_section(path, heading_line, body))
        level = len(match.group(1))
        while path and path[-1][0] >= level:
            path.pop()
        path.append((level, match.group(2).strip()))
        heading_line, body = line, []
    sections.append(_section(path, heading_line, body))
    return [section for section in sections if section.text.strip()]


def _section(path: list[tuple[int, str]], heading_line: str, body: list[str]) -> Section:
    return Section(tuple(title for _, title in path), heading_line, "\n".join(body).strip("\n"))
