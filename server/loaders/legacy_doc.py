"""Legacy Word (.doc) loader.

Word 97-2003 files are read natively: the text sits in the WordDocument stream as pieces listed by the piece
table ([MS-DOC] Clx/PlcPcd). Files this reader cannot handle (Word 6/95, odd writers) go to antiword or
LibreOffice when one is installed.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

from server.documents import Document
from server.errors import DocumentLoadError, UnsupportedFileType
from server.loaders._common import clean_text, make_doc
from server.loaders.cfb import OLE_MAGIC, CompoundFile, CompoundFileError
from server.loaders.limits import Budget, check_zip

CONVERT_TIMEOUT_S = 120
_WORD_MAGIC = 0xA5EC
_MIN_WORD97_FIB = 101
_FLAG_ENCRYPTED = 0x0100
_FLAG_TABLE1 = 0x0200
_CONTROL = dict.fromkeys(range(32), None) | {
    ord("\t"): "\t",
    ord("\n"): "\n",
    ord("\r"): "\n",  # paragraph end
    0x0B: "\n",  # line break
    0x0C: "\n",  # page or section break
    0x0E: "\n",  # column break
    0x1E: "-",  # non-breaking hyphen
}
_ROW_END = re.compile("\x07[ \t]*\x07")


class _NotWord97(ValueError):
    """The file is not a Word 97+ binary document this module can read itself."""


def load_doc(path: Path, source: str, budget: Budget) -> list[Document]:
    data = path.read_bytes()
    if not data.startswith(OLE_MAGIC):
        return _load_impostor(path, data, source, budget)
    try:
        text = word97_text(data, source)
    except _NotWord97 as err:
        text = _convert(path, source, str(err), budget)
    text = clean_text(text)
    return [make_doc(text, source, format="text")] if text else []


def _load_impostor(path: Path, data: bytes, source: str, budget: Budget) -> list[Document]:
    """Files named .doc that are really .docx, RTF or HTML (Word's "save as web page") are common."""
    head = data[:1024].lstrip().lower()
    if data.startswith(b"PK\x03\x04"):
        from server.loaders.office import load_docx

        if budget.limits is not None:
            check_zip(path, source, budget.limits)
        return load_docx(path, source, budget)
    if head.startswith((b"<html", b"<!doctype html", b"<?xml")) or b"<html" in head:
        from server.loaders.html import load_html

        return load_html(path, source, budget)
    kind = "an RTF file" if head.startswith(b"{\\rtf") else "not a Word document (corrupt or renamed)"
    raise DocumentLoadError(f"{source}: the .doc is {kind}; open it in an office suite and save it as .docx")


def word97_text(data: bytes, source: str) -> str:
    """Extract the main-document text of a Word 97-2003 file."""
    try:
        storage = CompoundFile(data)
        word = storage.stream("WordDocument")
        if word is None or len(word) < 0x1AA or _u16(word, 0) != _WORD_MAGIC:
            raise _NotWord97("no Word 97 document stream")
        if _u16(word, 2) < _MIN_WORD97_FIB:
            raise _NotWord97("Word 6/95 format")
        flags = _u16(word, 0x0A)
        if flags & _FLAG_ENCRYPTED:
            raise DocumentLoadError(f"{source}: the .doc is password-protected; remove the password and retry")
        table = storage.stream("1Table" if flags & _FLAG_TABLE1 else "0Table")
        if table is None:
            raise _NotWord97("table stream missing")
        text_length = struct.unpack_from("<i", word, 0x4C)[0]
        clx_offset, clx_length = struct.unpack_from("<II", word, 0x1A2)
        pieces = _pieces(table[clx_offset : clx_offset + clx_length])
    except (CompoundFileError, struct.error) as err:
        raise _NotWord97(f"unreadable structure ({err})") from err
    return _clean_controls("".join(_piece_text(word, piece, text_length) for piece in pieces))


def _pieces(clx: bytes) -> list[tuple[int, int, int]]:
    """(first character position, last+1, file offset word) for each piece in the piece table."""
    pos = 0
    while pos < len(clx) and clx[pos] == 0x01:  # Prc entries (formatting) come first; skip them
        pos += 3 + _u16(clx, pos + 1)
    if pos >= len(clx) or clx[pos] != 0x02:
        raise _NotWord97("piece table not found")
    size = struct.unpack_from("<I", clx, pos + 1)[0]
    plc = clx[pos + 5 : pos + 5 + size]
    count = (len(plc) - 4) // 12
    cps = struct.unpack_from(f"<{count + 1}I", plc, 0)
    fcs = [struct.unpack_from("<I", plc, 4 * (count + 1) + 8 * i + 2)[0] for i in range(count)]
    return [(cps[i], cps[i + 1], fcs[i]) for i in range(count)]


def _piece_text(word: bytes, piece: tuple[int, int, int], text_length: int) -> str:
    start, end, fc = piece
    end = min(end, text_length)  # past the main text come footnotes, headers and the like
    if end <= start:
        return ""
    count = end - start
    if fc & 0x40000000:  # "compressed": one byte per character, Windows-1252
        offset = (fc & 0x3FFFFFFF) // 2
        return word[offset : offset + count].decode("cp1252", errors="replace")
    offset = fc & 0x3FFFFFFF
    return word[offset : offset + 2 * count].decode("utf-16-le", errors="replace")


def _clean_controls(raw: str) -> str:
    """Keep field results but not field codes; turn table marks into " | " cells and row lines."""
    out: list[str] = []
    fields: list[bool] = []  # one entry per open field: True once its result part has started
    for char in raw:
        if char == "\x13":
            fields.append(False)
        elif char == "\x14":
            if fields:
                fields[-1] = True
        elif char == "\x15":
            if fields:
                fields.pop()
        elif all(fields):
            out.append(char)
    text = _ROW_END.sub("\n", "".join(out)).replace("\x07", " | ")
    return text.translate(_CONTROL)


def _convert(path: Path, source: str, reason: str, budget: Budget) -> str:
    if shutil.which("antiword"):
        return _run(["antiword", "-m", "UTF-8.txt", "-w", "0", str(path)], source).stdout
    office = shutil.which("soffice") or shutil.which("libreoffice")
    if office:
        return _convert_with_office(office, path, source, budget)
    raise UnsupportedFileType(
        f"{source}: this legacy .doc cannot be read built-in ({reason}); it needs LibreOffice or antiword: "
        "install one (apt-get install antiword) or save the file as .docx"
    )


def _convert_with_office(office: str, path: Path, source: str, budget: Budget) -> str:
    from server.loaders.office import load_docx

    with tempfile.TemporaryDirectory(prefix="zhiku-doc-") as out_dir:
        _run([office, "--headless", "--convert-to", "docx", "--outdir", out_dir, str(path)], source)
        converted = Path(out_dir) / (path.stem + ".docx")
        if not converted.exists():
            raise DocumentLoadError(f"{source}: LibreOffice produced no output; open and save it as .docx")
        docs = load_docx(converted, source, budget)
    return "\n".join(doc.page_content for doc in docs)


def _run(command: list[str], source: str) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(
            command,
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            timeout=CONVERT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise DocumentLoadError(f"{source}: {Path(command[0]).name} failed ({err}); save it as .docx") from err
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()[:200]
        raise DocumentLoadError(f"{source}: {Path(command[0]).name} could not convert it ({detail}); save as .docx")
    return result


def _u16(data: bytes, offset: int) -> int:
    return int(struct.unpack_from("<H", data, offset)[0])
