"""A recursive splitter tuned for Chinese (and mixed Chinese/English) prose.

Lengths are measured in *units*, not code points: an ASCII character (English letters, digits, spaces,
punctuation) counts as half a unit and any other character as one. So ``chunk_size`` 250 means about 250 Chinese
characters or about 500 characters of English, and mixed text falls in between. Other scripts count one per
character, which keeps their chunks no longer than plain character counting made them. The weight was measured
on English retrieval (docs/retrieval.md): counting every character as one left English chunks at about 40 words,
and both that and a quarter (about 1,000 characters) retrieved worse than a half. Text without ASCII splits the
same under all three.

The text is first cut into small *pieces*: always at line breaks and sentence ends, and further (clauses, words,
finally fixed-width runs) only where a sentence is still longer than ``chunk_size``. Every separator, with the
whitespace after it, stays at the end of the piece before it, so chunks end with "。" rather than start with it,
and no piece starts with whitespace. The pieces are then merged greedily into chunks of at most ``chunk_size``
units; each new chunk starts with an overlap taken from the end of the previous one, made of whole pieces when
they fit and of a suffix otherwise. All of it is linear in the length of the text.
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
# Where a suffix overlap may start instead of mid-clause.
_SOFT_BREAK = re.compile(r"[，,；;、：:\s]")
# Lengths are kept in half units, so that every count stays an integer.
HALVES_PER_UNIT = 2


def chunk_length(text: str) -> float:
    """The length of ``text`` in the units ``chunk_size`` counts: 0.5 per ASCII character, 1 per other."""
    return _halves(text) / HALVES_PER_UNIT


def _halves(text: str) -> int:
    # Encoding in C is about 100x faster than counting CJK characters with a regex, and this runs on every
    # sentence and piece.
    ascii_count = len(text.encode("ascii", "ignore"))
    return ascii_count + (len(text) - ascii_count) * HALVES_PER_UNIT


class ChineseRecursiveTextSplitter:
    """Split text into chunks of at most ``chunk_size`` units (see the module doc), never more."""

    def __init__(self, chunk_size: int = 250, chunk_overlap: int = 50) -> None:
        _validate(chunk_size, chunk_overlap)
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self._limit = chunk_size * HALVES_PER_UNIT
        self._overlap_limit = chunk_overlap * HALVES_PER_UNIT

    def split_text(self, text: str) -> list[str]:
        """Return the stripped, non-empty chunks of ``text`` in order."""
        atoms: list[str] = []
        for sentence in _split_after(_normalize(text).lstrip(), _SENTENCE_END):
            if _halves(sentence) <= self._limit:
                atoms.append(sentence)
            else:
                self._fit(sentence, 0, atoms)
        chunks = (chunk.strip() for chunk in self._merge(atoms))
        return [chunk for chunk in chunks if chunk]

    def _fit(self, text: str, depth: int, out: list[str]) -> None:
        """Append ``text`` to ``out`` in pieces of at most chunk_size, cut at the coarsest separator that works."""
        if _halves(text) <= self._limit:
            out.append(text)
        elif depth == len(_CLAUSE_SEPARATORS):
            out.extend(self._hard_cut(text))
        else:
            for piece in _split_after(text, _CLAUSE_SEPARATORS[depth]):
                if _halves(piece) <= self._limit:
                    out.append(piece)  # the common case, without the cost of a call per piece
                else:
                    self._fit(piece, depth + 1, out)

    def _hard_cut(self, text: str) -> list[str]:
        # Cuts leave room for a full overlap in front of each, so runs without separators overlap too. Only
        # the text proper is cut; trailing whitespace goes to the last cut as far as it fits, since a blank
        # piece would turn into a chunk or an overlap with nothing in it.
        step = self._limit - self._overlap_limit
        body = text.rstrip()
        pieces: list[str] = []
        start = 0
        while start < len(body):
            end = start + max(_fitting_prefix(body, start, step), 1)
            pieces.append(body[start:end])
            start = end
        room = self._limit - _halves(pieces[-1])
        pieces[-1] += text[len(body) : len(body) + _fitting_prefix(text, len(body), room)]
        return pieces

    def _merge(self, atoms: list[str]) -> list[str]:
        chunks: list[str] = []
        current: list[str] = []
        length = 0
        for atom in atoms:
            size = _halves(atom)
            if length + size > self._limit and current:
                chunks.append("".join(current))
                current = _overlap(current, min(self._overlap_limit, self._limit - size))
                length = sum(map(_halves, current))
            current.append(atom)
            length += size
        if current:
            chunks.append("".join(current))
        return chunks


def _overlap(pieces: list[str], budget: int) -> list[str]:
    """The tail of ``pieces`` to repeat at the start of the next chunk, at most ``budget`` half units."""
    if budget <= 0:
        return []
    taken: list[str] = []
    total = 0
    for piece in reversed(pieces):
        size = _halves(piece)
        if total + size > budget:
            break
        taken.append(piece)
        total += size
    if taken:
        taken.reverse()
        return taken
    # Shorter than the piece's text proper, so the next chunk never starts where this one does.
    last = pieces[-1]
    count = min(_fitting_suffix(last, budget), len(last.lstrip()) - 1)
    tail = _start_at_soft_break(last[-count:]) if count > 0 else ""
    return [tail] if tail.strip() else []


def _fitting_prefix(text: str, start: int, budget: int) -> int:
    """How many characters of ``text`` from ``start`` on fit in ``budget`` half units."""
    # A binary search over the count, each step counting in C: far faster than a loop over characters in
    # Python on the long runs without separators that reach here.
    low, high = 0, min(budget, len(text) - start)
    while low < high:
        middle = (low + high + 1) // 2
        if _halves(text[start : start + middle]) <= budget:
            low = middle
        else:
            high = middle - 1
    return low


def _fitting_suffix(text: str, budget: int) -> int:
    """How many characters at the end of ``text`` fit in ``budget`` half units."""
    return _fitting_prefix(text[::-1], 0, budget)


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
