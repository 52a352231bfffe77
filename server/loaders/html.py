"""HTML and EPUB loaders: markup becomes Markdown-ish text (headings as "#" lines, blocks as lines)."""

from __future__ import annotations

import codecs
import re
import zipfile
from pathlib import Path
from typing import Any

from server.documents import Document
from server.errors import DocumentLoadError
from server.loaders._common import clean_text, make_doc, markdown_table
from server.loaders.encoding import decode_bytes, ensure_text
from server.loaders.limits import Budget

_DROP = ("script", "style", "nav", "noscript", "template", "svg", "head")
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_BLOCKS = frozenset(
    [
        "p",
        "div",
        "section",
        "article",
        "main",
        "header",
        "footer",
        "aside",
        "ul",
        "ol",
        "dl",
        "dt",
        "dd",
        "blockquote",
        "pre",
        "table",
        "thead",
        "tbody",
        "tfoot",
        "caption",
        "figure",
        "figcaption",
        "form",
        "fieldset",
        "address",
        "hr",
        "body",
        "html",
        "center",
        "details",
        "summary",
    ]
)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_SPACES = re.compile(r"[ \t\r\n\f\v]+")
# Pages labelled as GB2312/GBK are nearly always written by tools that emit the GB18030 superset.
_CHARSET_ALIASES = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "big5": "big5hkscs"}


def html_to_text(markup: str | bytes, source: str) -> tuple[str, str]:
    """Convert HTML to Markdown-ish text; return (text, title). `source` names the file in errors."""
    import lxml.html
    from lxml import etree

    if isinstance(markup, bytes):
        markup = decode_bytes(markup, _declared_charset(markup))
    if not markup.strip():
        return "", ""
    # Encoded again, since lxml refuses text that carries an encoding declaration; the parser is told it is UTF-8.
    parser = lxml.html.HTMLParser(encoding="utf-8", remove_comments=True)
    try:
        root = lxml.html.document_fromstring(markup.encode("utf-8", "replace"), parser=parser)
    except etree.ParserError:  # nothing but comments or white space
        return "", ""
    if any(error.type == etree.ErrorTypes.ERR_RESOURCE_LIMIT for error in parser.error_log):
        # libxml2 stops at 256 levels and drops the rest of the page: refuse it rather than index a part.
        raise DocumentLoadError(f"{source}: elements nested too deeply to parse; simplify or re-save it")
    title_tag = root.find(".//title")
    title = _joined(title_tag) if title_tag is not None else ""
    for tag in list(root.iter(etree.ProcessingInstruction, *_DROP)):
        tag.drop_tree()  # keeps the text that follows it
    lines: list[str] = []
    _Walker(lines).element(root)
    return clean_text("\n".join(lines)), title


def _joined(tag: Any) -> str:
    """The element's text, its pieces joined by spaces and runs of white space made one."""
    return " ".join(" ".join(tag.itertext()).split())


def load_html(path: Path, source: str, budget: Budget) -> list[Document]:
    data = path.read_bytes()
    ensure_text(data, source)
    budget.check_text(len(data) // 4)  # at most 4 bytes a character: this many at least
    text, title = html_to_text(data, source)  # decoded there, by its declared charset or detection
    if not text:
        return []
    metadata: dict[str, Any] = {"format": "markdown"}
    if title:
        metadata["title"] = title
    return [make_doc(text, source, **metadata)]


def load_epub(path: Path, source: str, budget: Budget) -> list[Document]:
    from ebooklib.epub import EpubException

    try:
        chapters = _epub_chapters(path)
    except (EpubException, zipfile.BadZipFile, KeyError, ValueError, OSError) as err:
        raise DocumentLoadError(
            f"{source}: cannot open as EPUB ({type(err).__name__}: {err}); the file is corrupt or "
            "DRM-protected, export it again as a plain EPUB"
        ) from err
    docs = []
    for number, content in enumerate(chapters, start=1):
        budget.tick()
        text, title = html_to_text(content, source)
        if text:
            metadata: dict[str, Any] = {"page": number, "format": "markdown"}
            title = _first_heading(text) or title
            if title:
                metadata["title"] = title
            docs.append(make_doc(text, source, **metadata))
    return docs


def _epub_chapters(path: Path) -> list[bytes]:
    import ebooklib
    from ebooklib import epub

    # Passing the option explicitly keeps ebooklib from warning about its future default.
    book = epub.read_epub(str(path), options={"ignore_ncx": True})
    items = [book.get_item_with_id(idref) for idref, _linear in book.spine]
    documents = [item for item in items if item is not None and item.get_type() == ebooklib.ITEM_DOCUMENT]
    if not documents:
        documents = list(book.get_items_of_type(ebooklib.ITEM_DOCUMENT))
    return [item.get_content() for item in documents if not isinstance(item, epub.EpubNav)]


def _first_heading(text: str) -> str:
    for line in text.split("\n", 20)[:20]:
        if line.startswith("#"):
            return line.lstrip("#").strip()
    return ""


def _declared_charset(data: bytes) -> str | None:
    match = _META_CHARSET.search(data[:4096])
    if not match or data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return None
    name = match.group(1).decode("ascii").lower()
    name = _CHARSET_ALIASES.get(name, name)
    try:
        codecs.lookup(name)
        data.decode(name)
    except (LookupError, UnicodeDecodeError):
        return None  # a wrong or unknown label: fall back to detection
    return name


def _table_cells(table: Any) -> list[list[str]]:
    """The rows of a table (not of tables nested in it), a cell spanning columns repeated in each of them."""
    rows = []
    for row in table.iter("tr"):
        if next(row.iterancestors("table"), None) is not table:
            continue
        cells: list[str] = []
        for cell in row:
            if cell.tag in ("td", "th"):
                cells.extend([_joined(cell)] * _span(cell.get("colspan")))
        rows.append(cells)
    return rows


def _span(value: Any) -> int:
    try:
        return max(1, min(int(str(value)), 100))  # a bounded span: colspan="100000" must not blow a row up
    except ValueError:
        return 1


class _Walker:
    """Walks the tree once, emitting one line per block element and "#" lines for headings."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.buffer: list[str] = []

    def children(self, tag: Any) -> None:
        if tag.text:
            self.buffer.append(tag.text)
        for child in tag:
            self.element(child)
            if child.tail:
                self.buffer.append(child.tail)

    def element(self, tag: Any) -> None:
        name = tag.tag if isinstance(tag.tag, str) else ""
        if name in _HEADINGS:
            self.flush()
            heading = _joined(tag)
            if heading:
                self.lines.append(f"{'#' * _HEADINGS[name]} {heading}")
        elif name == "br":
            self.flush()
        elif name == "pre":
            self.flush()
            self.lines.append("".join(tag.itertext()).strip("\n"))
        elif name == "table":
            self.flush()
            self.lines.extend(["", *markdown_table(_table_cells(tag)), ""])
        elif name == "li":
            self.flush()
            self.buffer.append("- ")
            self.children(tag)
            self.flush()
        elif name in _BLOCKS:
            self.flush()
            self.children(tag)
            self.flush()
        else:
            self.children(tag)

    def flush(self) -> None:
        line = _SPACES.sub(" ", "".join(self.buffer)).strip()
        self.buffer.clear()
        if line and line != "-":
            self.lines.append(line)
