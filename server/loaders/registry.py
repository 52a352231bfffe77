"""Which loader reads which file type: one `FileLoader` line per format.

Adding a format: write `server/loaders/<format>.py` with a `load_<format>(path, source, budget) -> list[Document]`
that imports its parsing library inside the function (importing this package must stay cheap) and calls
`budget.tick()` in its loops (`budget.row(n)` for rows of a table), then add one
`FileLoader(...)` line to `LOADERS`. Uploads, `/server/configs` and the Web UI's file picker follow from here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from server.documents import Document
from server.loaders import faq, html, image, legacy_doc, office, pdf, roff, sheets, text
from server.loaders.limits import Budget

LoaderFn = Callable[[Path, str, Budget], list[Document]]


@dataclass(frozen=True)
class FileLoader:
    name: str  # recorded as the file's loader and shown in list_file_details
    extensions: tuple[str, ...]  # lower case, with the dot
    load: LoaderFn


class LoaderRegistry:
    def __init__(self, *loaders: FileLoader) -> None:
        self._by_extension = {ext: loader for loader in loaders for ext in loader.extensions}

    def __iter__(self) -> Iterator[tuple[str, FileLoader]]:
        return iter(sorted(self._by_extension.items()))

    def get(self, extension: str) -> FileLoader | None:
        return self._by_extension.get(extension.lower())

    def for_name(self, file_name: str) -> FileLoader | None:
        """The loader of a file name; a compound extension (`.faq.jsonl`) wins over its last part (`.jsonl`)."""
        lowered = file_name.lower()
        compound = [ext for ext in self._by_extension if ext.count(".") > 1 and lowered.endswith(ext)]
        if compound:
            return self._by_extension[max(compound, key=len)]
        return self.get(Path(lowered).suffix)

    def extensions(self) -> frozenset[str]:
        return frozenset(self._by_extension)


LOADERS = LoaderRegistry(
    FileLoader("TextLoader", (".txt", ".rst"), text.load_txt),
    FileLoader("MarkdownLoader", (".md", ".markdown"), text.load_markdown),
    FileLoader("CsvLoader", (".csv",), text.load_csv),
    FileLoader("JsonLoader", (".json",), text.load_json),
    FileLoader("JsonLinesLoader", (".jsonl",), text.load_jsonl),
    FileLoader(faq.FAQ_LOADER, (faq.FAQ_SUFFIX,), faq.load_faq),
    FileLoader("PdfLoader", (".pdf",), pdf.load_pdf),
    FileLoader("ImageOcrLoader", (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"), image.load_image),
    FileLoader("DocxLoader", (".docx",), office.load_docx),
    FileLoader("DocLoader", (".doc",), legacy_doc.load_doc),
    FileLoader("PptxLoader", (".pptx",), office.load_pptx),
    FileLoader("XlsxLoader", (".xlsx",), sheets.load_xlsx),
    FileLoader("XlsLoader", (".xls",), sheets.load_xls),
    FileLoader("HtmlLoader", (".html", ".htm"), html.load_html),
    FileLoader("EpubLoader", (".epub",), html.load_epub),
    FileLoader("ManPageLoader", (".man", ".roff", *(f".{section}" for section in range(1, 10))), roff.load_man),
)
