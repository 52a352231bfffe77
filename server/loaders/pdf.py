"""PDF loader (pypdf): one Document per page that has a text layer."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from server.documents import Document
from server.errors import DocumentLoadError
from server.loaders._common import clean_text, make_doc
from server.loaders.limits import Budget

if TYPE_CHECKING:
    from pypdf import PdfReader


def load_pdf(path: Path, source: str, budget: Budget) -> list[Document]:
    from pypdf.errors import PyPdfError

    try:
        reader = _open(path, source)
        pages = []
        for number, page in enumerate(reader.pages, start=1):
            budget.tick()
            pages.append((number, clean_text(page.extract_text() or "")))
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as err:
        raise DocumentLoadError(
            f"{source}: cannot read PDF ({type(err).__name__}: {err}); the file may be corrupt or truncated, "
            "try re-saving or re-exporting it"
        ) from err
    docs = [make_doc(text, source, page=number, format="text") for number, text in pages if text]
    if not docs:
        raise DocumentLoadError(
            f"{source}: PDF has {len(pages)} page(s) but no text layer (scanned images?); "
            "run OCR first (e.g. ocrmypdf) and upload the result"
        )
    return docs


def _open(path: Path, source: str) -> PdfReader:
    from pypdf import PdfReader

    reader = PdfReader(path)
    if reader.is_encrypted and not reader.decrypt(""):
        raise DocumentLoadError(f"{source}: PDF is password-protected; remove the password and upload it again")
    return reader
