"""Encoding detection for text files, tuned for Chinese documents.

Exact, cheap checks run first (byte-order marks, strict UTF-8); only when the bytes could be more than one
Chinese legacy encoding does charset-normalizer break the tie.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from server.errors import DocumentLoadError

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_SAMPLE_BYTES = 64 * 1024
_PRIVATE_USE = re.compile("[\ue000-\uf8ff]")
_NEWLINES = re.compile(r"\r\n?")


def detect_encoding(data: bytes) -> str:
    """Return the Python codec name that decodes `data`, preferring exact evidence over statistics."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    if _decodes(data, "utf-8"):
        return "utf-8"
    return _guess_legacy(data)


def decode_bytes(data: bytes, encoding: str | None = None) -> str:
    """Decode with `encoding` (detected when None) and normalise newlines to "\\n"."""
    codec = encoding or detect_encoding(data)
    text = data.decode(codec, errors="replace")
    return _NEWLINES.sub("\n", text)


def read_text(path: Path) -> str:
    """Read a text file of unknown encoding; newlines come back as "\\n"."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DocumentLoadError(f"cannot read {path.name}: {err.strerror or err}; check the file exists") from err
    ensure_text(data, path.name)
    return decode_bytes(data)


def ensure_text(data: bytes, name: str) -> None:
    """Refuse bytes that are clearly binary (NUL bytes without a UTF-16/32 byte-order mark)."""
    has_bom = any(data.startswith(bom) for bom, _ in _BOMS)
    if not has_bom and b"\x00" in data[:_SAMPLE_BYTES]:
        raise DocumentLoadError(
            f"{name}: looks like a binary file, not text (it contains NUL bytes); check the file type or extension"
        )


def _decodes(data: bytes, codec: str) -> bool:
    try:
        data.decode(codec)
    except UnicodeDecodeError:
        return False
    return True


def _guess_legacy(data: bytes) -> str:
    # GB18030 accepts almost any byte pair, so Big5 text usually "decodes" as GB18030 too; Big5's common
    # characters then land in GB's user-defined area, which real GB text never uses.
    as_gb = _strict(data, "gb18030")
    big5_ok = _decodes(data, "big5")
    if as_gb is not None and not big5_ok:
        return "gb18030"
    if as_gb is None and big5_ok:
        return "big5"
    if as_gb is not None:
        if _PRIVATE_USE.search(as_gb):
            return "big5"
        return _tie_break(data, ["gb18030", "big5"]) or "gb18030"
    return _tie_break(data, None) or "latin-1"


def _strict(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except UnicodeDecodeError:
        return None


def _tie_break(data: bytes, candidates: list[str] | None) -> str | None:
    from charset_normalizer import from_bytes

    best = from_bytes(data[:_SAMPLE_BYTES], cp_isolation=candidates).best()
    if best is None:
        return None
    name = codecs.lookup(best.encoding).name
    # A sample cut mid-character may fit a codec the whole file does not; prefer one that decodes it all.
    return name if _decodes(data, name) or candidates is None else None
