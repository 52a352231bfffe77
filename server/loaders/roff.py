"""Man pages (roff source: .man, .1 … .9) read as Markdown-like text: sections become headings, font and
character escapes become plain characters, layout requests disappear.

Only the man(7) macros real pages use are understood; an unknown request keeps its arguments as text, so nothing
readable is lost.
"""

from __future__ import annotations

import re
from pathlib import Path

from server.documents import Document
from server.loaders._common import clean_text, make_doc
from server.loaders.encoding import read_text
from server.loaders.limits import Budget

_CHARACTERS = {
    "em": "—", "en": "–", "bu": "•", "hy": "-", "aq": "'", "dq": '"', "lq": "“", "rq": "”", "oq": "‘", "cq": "’",
    "co": "©", "rg": "®", "tm": "™", "mu": "×", "de": "°", "<=": "≤", ">=": "≥", "->": "→", "<-": "←", "ti": "~",
    "ha": "^", "ga": "`", "rs": "\\", "sl": "/", "lB": "[", "rB": "]",
}  # fmt: skip
_ESCAPE = re.compile(r"\\(\((..)|\[([^\]]*)\]|f(\(..|\[[^\]]*\]|.)|s[+-]?\d+|\*(\(..|\[[^\]]*\]|.)|.)")
_COMMENT = re.compile(r'\\".*$')
_BREAKS = {"PP", "LP", "P", "sp", "br", "RS", "RE", "nf", "fi", "HP", "TP", "in", "ne", "bp"}
_IGNORED = {"ad", "na", "hy", "nh", "ft", "ps", "ta", "ce", "so", "ds", "nr", "de", "ig", "if", "ie", "el", "tr"}
_FONTS = {"B", "I", "R", "SM", "SB", "BR", "RB", "IR", "RI", "BI", "IB"}


def load_man(path: Path, source: str, budget: Budget) -> list[Document]:
    text = roff_to_text(read_text(path), budget)
    return [make_doc(text, source, format="markdown")] if text else []


def roff_to_text(source: str, budget: Budget | None = None) -> str:
    lines = []
    for raw in source.splitlines():
        if budget is not None:
            budget.tick()
        line = _request(raw) if raw[:1] in (".", "'") else _inline(raw)
        if line is not None:
            lines.append(line)
    return clean_text("\n".join(lines))


def _request(raw: str) -> str | None:
    """One request line (`.XX args`): a heading, a paragraph break, text, or nothing."""
    name, _, rest = raw[1:].strip().partition(" ")
    if name.startswith('\\"') or name in _IGNORED or not name:
        return None  # a comment, or layout with no text
    args = _arguments(_COMMENT.sub("", rest))
    if name == "TH":
        return f"# {args[0]}({args[1]})" if len(args) > 1 else f"# {' '.join(args)}"
    if name == "SH":
        return f"\n## {' '.join(args).title()}"
    if name == "SS":
        return f"\n### {' '.join(args)}"
    if name in _BREAKS:
        return ""
    if name == "IP":
        return f"\n{_inline(args[0])}" if args else ""
    joiner = "" if name in _FONTS and len(name) == 2 and name not in ("SM", "SB") else " "
    return _inline(joiner.join(args)) if args else None


def _arguments(rest: str) -> list[str]:
    """Request arguments: words, or "quoted strings" with spaces."""
    return [quoted or word for quoted, word in re.findall(r'"([^"]*)"|(\S+)', rest)]


def _inline(text: str) -> str:
    return _ESCAPE.sub(_escape, _COMMENT.sub("", text))


def _escape(match: re.Match[str]) -> str:
    whole = match.group(1)
    if match.group(2) or match.group(3) is not None:
        name = match.group(2) or match.group(3) or ""
        return _CHARACTERS.get(name, "")
    if whole[0] in "fs*":
        return ""  # font, size and string changes
    return {"-": "-", "e": "\\", "\\": "\\", " ": " ", "~": " ", "&": "", "|": "", "^": "", "c": "", '"': ""}.get(
        whole, whole
    )
