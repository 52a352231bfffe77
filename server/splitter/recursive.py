"""A recursive splitter tuned for Chinese (and mixed Chinese/English) prose.

The text is first cut into small *pieces*: always at line breaks and sentence ends, and further (clauses, words,
finally fixed-width character runs) only where a sentence is still longer than ``chunk_size``. Every separator,
with the whitespace after it, stays at the end of the piece before it, so chunks end with "。" rather than start
with it, and no piece starts with whitespace. The pieces are then merged greedily into chunks of at most
``chunk_size`` characters; each new chunk starts with an overlap taken from the end of the previous one, made of
whole pieces when they fit and of a character suffix otherwise. All of it is linear in the length of the text.
"""

from __future__ import annotations

import re

from server.errors import InvalidInput

# Always applied: lines and sentences are the pieces that chunks are merged from, so chunks fill up well and
# the overlap can usually be made of whole sentences. Each pattern has one group, around the whole separator.
_SENTENCE_END = re.compile(
    r"((?:\n"  # line breaks (blank lines too, through the trailing whitespace)
    r"|[。！？…]+[”’』」]*)\s*"  # Chinese sentence ends, also "？！", "……", "。」"
    r"|(?<!\d)[.!?]+[\"')\]]*\s+)"  # English sentence ends followed by a space; not "1. " in a list
)
# Tried in order on a sentence only while it is still longer than chunk_size, then characters.
_CLAUSE_SEPARATORS: tuple[re.Pattern[str], ...] = (
    re.compile(r"([；;]\s*)"),
    re.compile(r"([，,、]\s*)"),
    re.compile(r"(\s+)"),
)
_MANY_NEWLINES = re.compile(r"\n(?:[ \t]*\n){2,}")
# Where a character-suffix overlap may start instead of mid-clause.
_SOFT_BREAK = re.compile(r"[，,；;、：:\s]")


class ChineseRecursiveTextSplitter:
    """Split text into chunks of at most ``chunk_size`` characters (``len(str)``), never more."""

    def __init__(self, chunk_size: int = 250, chunk_overlap: int = 50) -> None:
        _validate(chunk_size, chunk_overlap)
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap

    def split_text(self, text: str) -> list[str]:
        """Return the stripped, non-empty chunks of ``text`` in order."""
        atoms: list[str] = []
        for sentence in _split_after(_normalize(text).lstrip(), _SENTENCE_END):
            if len(sentence) <= self.chunk_size:
                atoms.append(sentence)
            else:
                self._fit(sentence, 0, atoms)
        chunks = (chunk.strip() for chunk in self._merge(atoms))
        return [chunk for chunk in chunks if chunk]

    def _fit(self, text: str, depth: int, out: list[str]) -> None:
        """Append ``text`` to ``out`` in pieces of at most chunk_size, cut at the coarsest separator that works."""
        if len(text) <= self.chunk_size:
            out.append(text)
        elif depth == len(_CLAUSE_SEPARATORS):
            out.extend(self._hard_cut(text))
        else:
            for piece in _split_after(text, _CLAUSE_SEPARATORS[depth]):
                if len(piece) <= self.chunk_size:
                    out.append(piece)  # the common case, without the cost of a call per piece
                else:
                    self._fit(piece, depth + 1, out)

    def _hard_cut(self, text: str) -> list[str]:
        # Cuts leave room for a full overlap in front of each, so runs without separators overlap too. Only
        # the text proper is cut; trailing whitespace goes to the last cut as far as it fits, since a blank
        # piece would turn into a chunk or an overlap with nothing in it.
        step = self.chunk_size - self.chunk_overlap
        body = text.rstrip()
        pieces = [body[start : start + step] for start in range(0, len(body), step)]
        pieces[-1] += text[len(body) : len(body) + self.chunk_size - len(pieces[-1])]
        return pieces

    def _merge(self, atoms: list[str]) -> list[str]:
        size = self.chunk_size
        chunks: list[str] = []
        current: list[str] = []
        length = 0
        for atom in atoms:
            if length + len(atom) > size and current:
                chunks.append("".join(current))
                current = self._overlap(current, min(self.chunk_overlap, size - len(atom)))
                length = sum(map(len, current))
            current.append(atom)
            length += len(atom)
        if current:
            chunks.append("".join(current))
        return chunks

    @staticmethod
    def _overlap(pieces: list[str], budget: int) -> list[str]:
        """The tail of ``pieces`` to repeat at the start of the next chunk, at most ``budget`` characters."""
        if budget <= 0:
            return []
        taken: list[str] = []
        total = 0
        for piece in reversed(pieces):
            if total + len(piece) > budget:
                break
            taken.append(piece)
            total += len(piece)
        if taken:
            taken.reverse()
            return taken
        # Shorter than the piece's text proper, so the next chunk never starts where this one does.
        last = pieces[-1]
        budget = min(budget, len(last.lstrip()) - 1)
        tail = _start_at_soft_break(last[-budget:]) if budget > 0 else ""
        return [tail] if tail.strip() else []


def _normalize(text: str) -> str:
    """Unify line endings and collapse three or more line breaks (blank lines included) into two."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _MANY_NEWLINES.sub("\n\n", text)


def _split_after(text: str, pattern: re.Pattern[str]) -> list[str]:
    """Split ``text`` after every separator matched by ``pattern``'s group, keeping it with its piece."""
    parts = pattern.split(text)  # text, separator, text, separator, ..., text
    pieces = [piece + separator for piece, separator in zip(parts[0::2], parts[1::2], strict=False)]
    if parts[-1]:
        pieces.append(parts[-1])
    return pieces


def _start_at_soft_break(tail: str) -> str:
    # Drop a partial clause at the front when a break lies in the first half, keeping the overlap readable.
    match = _SOFT_BREAK.search(tail, 0, len(tail) // 2)
    if match is None:
        return tail
    return tail[match.end() :]


def _validate(chunk_size: int, chunk_overlap: int) -> None:
    for name, value in (("chunk_size", chunk_size), ("chunk_overlap", chunk_overlap)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(f"{name} must be an integer, got {value!r}")
    sizes = f"chunk_size={chunk_size}, chunk_overlap={chunk_overlap}"
    if chunk_size <= 0:
        raise InvalidInput(f"chunk_size must be positive ({sizes}); use a chunk_size of at least 1")
    if chunk_overlap < 0:
        raise InvalidInput(f"chunk_overlap must not be negative ({sizes}); use 0 for no overlap")
    if chunk_overlap >= chunk_size:
        raise InvalidInput(
            f"chunk_overlap must be smaller than chunk_size ({sizes}); lower chunk_overlap or raise chunk_size"
        )
