"""Split loaded documents into chunk documents, carrying metadata, heading paths and chunk indices."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from server.documents import Document
from server.splitter.markdown import split_sections
from server.splitter.recursive import ChineseRecursiveTextSplitter
from server.splitter.tables import blocks, split_table
from server.splitter.title import first_line_title

HEADING_SEPARATOR = " > "


@dataclass(frozen=True)
class _Chunk:
    text: str
    headings: str
    table: bool = False


def split_documents(
    docs: Sequence[Document], *, chunk_size: int, chunk_overlap: int, zh_title_enhance: bool = False
) -> list[Document]:
    """Split every document into chunks of at most ``chunk_size`` units (see server.splitter.recursive).

    Each chunk gets a copy of its document's metadata plus ``chunk_index`` (counted from 0 per ``source``,
    across all documents of that source, e.g. the pages of one PDF) and, for Markdown sections, ``headings``
    (the heading path joined with " > "). With ``zh_title_enhance`` a chunk that has a heading path, or whose
    document starts with a title-like line, gets ``title`` in its metadata and a "【title】" line in front of
    its text; that prefix is added after splitting, so it does not count towards ``chunk_size``.
    """
    splitter = ChineseRecursiveTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap)
    next_index: dict[Any, int] = {}
    result: list[Document] = []
    for doc in docs:
        for chunk in _split_document(splitter, doc, zh_title_enhance):
            source = chunk.metadata.get("source")
            chunk.metadata["chunk_index"] = next_index.get(source, 0)
            next_index[source] = chunk.metadata["chunk_index"] + 1
            result.append(chunk)
    return result


def _split_document(splitter: ChineseRecursiveTextSplitter, doc: Document, title_enhance: bool) -> list[Document]:
    doc_title = first_line_title(doc.page_content) if title_enhance else ""
    chunks: list[Document] = []
    for chunk in _split_sections(splitter, doc.page_content):
        metadata = dict(doc.metadata)
        if chunk.headings:
            metadata["headings"] = chunk.headings
        if chunk.table:
            metadata["table"] = True
        text = _enhance(chunk.text, chunk.headings, doc_title, metadata) if title_enhance else chunk.text
        chunks.append(Document(page_content=text, metadata=metadata))
    return chunks


def _split_sections(splitter: ChineseRecursiveTextSplitter, text: str) -> list[_Chunk]:
    sections = split_sections(text)
    with_body = [section for section in sections if section.body.strip()]
    # Sections that hold only a heading line (a book title followed by a chapter heading) are left out: their
    # heading lives on in the path of the sections below. Kept if the document has nothing else.
    chunks: list[_Chunk] = []
    for section in with_body or sections:
        headings = HEADING_SEPARATOR.join(section.headings)
        for block in blocks(section.text):
            if block.is_table:
                pieces = split_table(block, splitter.chunk_size, lambda text, size: _split(splitter, text, size))
                chunks.extend(_Chunk(piece, headings, table=True) for piece in pieces)
            else:
                chunks.extend(_Chunk(piece, headings) for piece in splitter.split_text(block.text))
    return chunks


def _split(splitter: ChineseRecursiveTextSplitter, text: str, size: int) -> list[str]:
    """Text cut to `size` units (a table row too long for one chunk), with the splitter's overlap where it fits."""
    if size >= splitter.chunk_size:
        return splitter.split_text(text)
    overlap = min(splitter.chunk_overlap, max(0, size // 5))
    return ChineseRecursiveTextSplitter(chunk_size=max(1, size), chunk_overlap=overlap).split_text(text)


def _enhance(text: str, headings: str, doc_title: str, metadata: dict[str, Any]) -> str:
    """Prefix the heading path, or else the document's title line unless the chunk already opens with it."""
    title = headings or doc_title
    if not title:
        return text
    metadata["title"] = title
    if not headings and text.startswith(doc_title):
        return text
    return f"【{title}】\n{text}"
