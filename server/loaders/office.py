"""Office Open XML loaders: .docx (python-docx), .pptx (python-pptx); spreadsheets are in sheets.py."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from server.documents import Document
from server.errors import DocumentLoadError
from server.loaders._common import clean_text, make_doc, markdown_table
from server.loaders.image import EmbeddedImages
from server.loaders.limits import Budget

_HEADING_STYLE = re.compile(r"^(?:heading|标题)\s*([1-9])$", re.IGNORECASE)
_OUTLINE_XPATH = "./w:pPr/w:outlineLvl/@w:val"
_STYLE_DEPTH = 4  # how far up a style's basedOn chain to look for an outline level
_RELATIONSHIP = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PICTURES = (
    f".//{{http://schemas.openxmlformats.org/drawingml/2006/main}}blip[@{_RELATIONSHIP}embed]",
    f".//{{urn:schemas-microsoft-com:vml}}imagedata[@{_RELATIONSHIP}id]",
)


def _corrupt(source: str, kind: str, err: BaseException) -> DocumentLoadError:
    return DocumentLoadError(
        f"{source}: cannot open as {kind} ({type(err).__name__}: {err}); the file is corrupt or not a valid "
        f"{kind} file; open and re-save it in an office suite"
    )


# ---- .docx -------------------------------------------------------------------------------------------


def load_docx(path: Path, source: str, budget: Budget) -> list[Document]:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    images = EmbeddedImages(budget, source)
    try:
        document = docx.Document(str(path))
        text = clean_text("\n".join(_docx_blocks(document, budget, images)))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, OSError) as err:
        raise _corrupt(source, "Word .docx", err) from err
    return [make_doc(text, source, format="markdown", **images.metadata())] if text else []


def _docx_blocks(document: Any, budget: Budget, images: EmbeddedImages) -> Iterator[str]:
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    for child in document.element.body.iterchildren():
        budget.tick()
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            line = _paragraph_line(Paragraph(child, document))
            if line:
                yield line
            yield from _picture_texts(child, document.part, images)
        elif tag == "tbl":
            yield ""
            yield from _table_rows(Table(child, document))
            yield ""
        elif tag == "sdt":  # content control (e.g. a table of contents): keep its text, one line per paragraph
            yield from _sdt_lines(child)


def _picture_texts(element: Any, part: Any, images: EmbeddedImages) -> Iterator[str]:
    """The text OCR reads in the pictures of a paragraph, where they stand in the document."""
    for query in _PICTURES:
        for picture in element.iterfind(query):
            rel_id = picture.get(f"{_RELATIONSHIP}embed") or picture.get(f"{_RELATIONSHIP}id")
            related = part.related_parts.get(rel_id)
            blob = getattr(related, "blob", None)
            text = images.text(blob) if isinstance(blob, bytes) else ""
            if text:
                yield text


def _sdt_lines(sdt: Any) -> Iterator[str]:
    for paragraph in sdt.iter(_w("p")):
        text = "".join(node.text or "" for node in paragraph.iter(_w("t"))).strip()
        if text:
            yield text


def _paragraph_line(paragraph: Any) -> str:
    text = paragraph.text.strip()
    if not text:
        return ""
    level = _heading_level(paragraph)
    return f"{'#' * level} {' '.join(text.split())}" if level else text


def _heading_level(paragraph: Any) -> int:
    own = paragraph._p.xpath(_OUTLINE_XPATH)
    if own:
        return _outline_to_level(own[0])
    style = paragraph.style
    for _ in range(_STYLE_DEPTH):
        if style is None:
            return 0
        match = _HEADING_STYLE.match(style.name or "")
        if match:
            return int(match.group(1))
        if style.name == "Title":
            return 1
        found = style.element.xpath(_OUTLINE_XPATH)
        if found:
            return _outline_to_level(found[0])
        style = style.base_style
    return 0


def _outline_to_level(value: str) -> int:
    level = int(value) + 1  # outlineLvl is 0-based; 9 means "body text"
    return min(level, 6) if level <= 9 else 0


def _table_rows(table: Any) -> list[str]:
    """The table as Markdown; a merged cell's text stands in every row and column it spans, so each row reads
    whole under the header."""
    return markdown_table([[cell.text for cell in row.cells] for row in table.rows])


def _w(name: str) -> str:
    return "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}" + name


# ---- .pptx -------------------------------------------------------------------------------------------


def load_pptx(path: Path, source: str, budget: Budget) -> list[Document]:
    import pptx
    from pptx.exc import PackageNotFoundError

    try:
        presentation = pptx.Presentation(str(path))
        slides = []
        for number, slide in enumerate(presentation.slides, 1):
            budget.tick()
            images = EmbeddedImages(budget, source)
            text = clean_text("\n".join(_slide_lines(slide, images)))
            slides.append((number, text, images.metadata()))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, OSError) as err:
        raise _corrupt(source, "PowerPoint .pptx", err) from err
    return [make_doc(text, source, page=number, format="text", **meta) for number, text, meta in slides if text]


def _slide_lines(slide: Any, images: EmbeddedImages) -> Iterator[str]:
    yield from _shape_lines(slide.shapes, images)
    if slide.has_notes_slide:
        notes = slide.notes_slide.notes_text_frame
        if notes is not None and notes.text.strip():
            yield f"Notes: {notes.text.strip()}"


def _shape_lines(shapes: Any, images: EmbeddedImages) -> Iterator[str]:
    for shape in shapes:
        if getattr(shape, "shapes", None) is not None:  # a group shape
            yield from _shape_lines(shape.shapes, images)
        elif getattr(shape, "image", None) is not None and _is_picture(shape):
            text = images.text(shape.image.blob)
            if text:
                yield text
        elif shape.has_text_frame and shape.text_frame.text.strip():
            yield shape.text_frame.text.strip()
        elif getattr(shape, "has_table", False):
            yield from _table_rows(shape.table)
            yield ""


def _is_picture(shape: Any) -> bool:
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    return bool(shape.shape_type == MSO_SHAPE_TYPE.PICTURE)
