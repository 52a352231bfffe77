"""PDF loader (pypdf): one Document per page; pages without a text layer are OCR'd (pypdfium2 renders them in
the OCR workers) when the file's OCR allows it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from server.documents import Document
from server.errors import DocumentLoadError
from server.loaders._common import clean_text, make_doc
from server.loaders.image import ocr_doc
from server.loaders.limits import Budget
from server.loaders.pdf_tables import TextRuns, layout_tables
from server.ocr import PageOcr, PdfPageJob

if TYPE_CHECKING:
    from pypdf import PdfReader


def load_pdf(path: Path, source: str, budget: Budget) -> list[Document]:
    from pypdf.errors import PyPdfError

    try:
        reader = _open(path, source)
        budget.pages(_declared_pages(reader))
        budget.pages(len(reader.pages))
        pages = []
        for number, page in enumerate(reader.pages, start=1):
            budget.tick()
            pages.append((number, _page_text(page)))
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as err:
        raise DocumentLoadError(
            f"{source}: cannot read PDF ({type(err).__name__}: {err}); the file may be corrupt or truncated, "
            "try re-saving or re-exporting it"
        ) from err
    ocr = budget.ocr if budget.ocr is not None and budget.ocr.enabled else None
    if ocr is not None:
        return _with_ocr(path, source, pages, ocr, budget)
    docs = [make_doc(text, source, page=number, format="text") for number, text in pages if text]
    if not docs:
        raise DocumentLoadError(
            f"{source}: PDF has {len(pages)} page(s) but no text layer (scanned images?) and OCR is off; "
            "upload it with ocr=auto"
        )
    return docs


def _page_text(page: Any) -> str:
    """The page's text layer; a page whose text runs stand in columns is read again with its layout, so its
    tables come out as Markdown tables (server/loaders/pdf_tables.py)."""
    runs = TextRuns()
    text = page.extract_text(visitor_text=runs.visit) or ""
    if runs.tabular():
        text = layout_tables(page.extract_text(extraction_mode="layout") or "") or text
    return clean_text(text)


def _with_ocr(path: Path, source: str, pages: list[tuple[int, str]], ocr: PageOcr, budget: Budget) -> list[Document]:
    """Pages with a text layer keep it; the others (every page with ocr: always) are rendered and OCR'd."""
    scanned = [number for number, text in pages if ocr.mode == "always" or len(text) < ocr.options.min_page_chars]
    dpi = ocr.options.render_dpi
    jobs = [PdfPageJob(str(path), number - 1, dpi, budget.max_pixels) for number in scanned]
    read = dict(zip(scanned, ocr.read_all(jobs, source, budget.remaining), strict=True))
    docs = []
    for number, text in pages:
        found = read.get(number)
        if found is not None and len(found.text.strip()) >= len(text):  # OCR saw at least what the layer holds
            docs.append(ocr_doc(found, source, number))
        elif text:
            docs.append(make_doc(text, source, page=number, format="text"))
    if not docs:
        raise DocumentLoadError(f"{source}: neither a text layer nor OCR found text on its {len(pages)} page(s)")
    return docs


def _declared_pages(reader: PdfReader) -> int:
    """The page count the document's page tree declares: known before the tree is walked."""
    from pypdf.generic import DictionaryObject

    pages = reader.root_object.get("/Pages")
    pages = pages.get_object() if pages is not None else None
    count = pages.get("/Count", 0) if isinstance(pages, DictionaryObject) else 0
    return int(count) if isinstance(count, int) else 0


def _open(path: Path, source: str) -> PdfReader:
    from pypdf import PdfReader

    reader = PdfReader(path)
    if reader.is_encrypted and not reader.decrypt(""):
        raise DocumentLoadError(f"{source}: PDF is password-protected; remove the password and upload it again")
    return reader
