"""A recursive splitter tuned for Chinese (and mixed Chinese/English) prose.

The text is first cut into small *pieces* ("atoms"): always down to sentence level, and further (clauses,
words, finally fixed-width character runs) only where a sentence is still longer than ``chunk_size``. Every
separator stays attached to the end of the piece before it, so chunks end with "。" rather than start with it.
The pieces are then merged greedily into chunks of at most ``chunk_size`` characters; each new chunk starts
with an overlap taken from the end of the previous one, made of whole pieces when they fit and of a character
suffix otherwise. Everything is linear in the length of the text.
"""

from __future__ import annotations

import re

from server.errors import InvalidInput

# Tried in order; a piece is split at a level only while it is still too long (see _SENTENCE_DEPTH).
_SEPARATORS: tuple[re.Pattern[str], ...] = (
    re.compile(r"\n(?:[ \t]*\n)+"),  # blank lines (paragraphs)
    re.compile(r"\n"),  # line breaks
    re.compile(r"[。！？…]+[”’』」]*"),  # Chinese sentence ends, also "？！", "……", "。」"
    re.compile(r"[.!?]+[\"')\]]*[ \t]+"),  # English sentence ends followed by a space
    re.compile(r"[；;][ \t]*"),
    re.compile(r"[，,、][ \t]*"),
    re.compile(r"[ \t\u3000]+"),
)
# Levels below this index are always applied, so merging works with sentence-sized pieces: chunks fill up
# better and the overlap can usually be made of whole sentences.
_SENTENCE_DEPTH = 4
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
        self._atomize(normalize_text(text), 0, atoms)
        chunks = (chunk.strip() for chunk in self._merge(atoms))
        return [chunk for chunk in chunks if chunk]

    def _atomize(self, text: str, depth: int, out: list[str]) -> None:
        if depth >= _SENTENCE_DEPTH and len(text) <= self.chunk_size:
            out.append(text)
        elif depth == len(_SEPARATORS):
            out.extend(self._hard_cut(text))
        else:
            for piece in split_keeping_separator(text, _SEPARATORS[depth]):
                if piece.strip():
                    self._atomize(piece, depth + 1, out)

    def _hard_cut(self, text: str) -> list[str]:
        # Cuts leave room for a full overlap in front of each, so runs without separators overlap too. Only
        # the text proper is cut: surrounding whitespace goes to the end pieces as far as it fits, since a
        # blank piece would turn into a chunk or an overlap with nothing in it.
        step = self.chunk_size - self.chunk_overlap
        body = text.strip()
        lead = text[: text.index(body)]
        trail = text[len(lead) + len(body) :]
        pieces = [body[start : start + step] for start in range(0, len(body), step)]
        pieces[0] = lead[max(0, len(lead) - (self.chunk_size - len(pieces[0]))) :] + pieces[0]
        pieces[-1] += trail[: self.chunk_size - len(pieces[-1])]
        return pieces

    def _merge(self, atoms: list[str]) -> list[str]:
        chunks: list[str] = []
        current: list[str] = []
        length = 0
        for atom in atoms:
            if current and length + len(atom) > self.chunk_size:
                chunks.append("".join(current))
                current = self._overlap(current, min(self.chunk_overlap, self.chunk_size - len(atom)))
                length = sum(len(piece) for piece in current)
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
        tail = pieces[-1][-budget:]
        return [_start_at_soft_break(tail)]


def normalize_text(text: str) -> str:
    """Unify line endings and collapse three or more line breaks (blank lines included) into two."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _MANY_NEWLINES.sub("\n\n", text)


def split_keeping_separator(text: str, pattern: re.Pattern[str]) -> list[str]:
    """Split ``text`` after every match of ``pattern``; the separators stay at the end of their piece."""
    pieces: list[str] = []
    start = 0
    for match in pattern.finditer(text):
        if match.end() > start:
            _append_piece(pieces, text[start : match.end()])
            start = match.end()
    if start < len(text):
        _append_piece(pieces, text[start:])
    return pieces


def _append_piece(pieces: list[str], piece: str) -> None:
    # Whitespace on its own (the second "\n" of a blank line, the indent before a first word) joins the piece
    # next to it, so no blank piece is left over to be dropped and no line break or space gets lost.
    if pieces and (not piece.strip() or not pieces[-1].strip()):
        pieces[-1] += piece
    else:
        pieces.append(piece)


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
