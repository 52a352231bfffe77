"""Retrieved chunks as numbered prompt context and as numbered citations (Markdown) for the answer."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote, urlencode

from server.knowledge_base.search import SearchResult

NOTHING_FOUND = (
    "未找到相关文档，该回答并非依据知识库内容。/ No relevant documents were found; this answer is not based on the "
    "knowledge base."
)


def _source(result: SearchResult) -> str:
    return str(result.metadata.get("source") or "unknown")


def _page(result: SearchResult) -> str:
    page = result.metadata.get("page")
    return f" (page {page})" if page not in (None, "") else ""


def numbered_context(results: Sequence[SearchResult]) -> str:
    """The chunks as "[1] text", separated by blank lines, for the {{ context }} placeholder."""
    return "\n\n".join(f"[{number}] {result.page_content}" for number, result in enumerate(results, start=1))


def download_link(kb_name: str, file_name: str, base_url: str = "") -> str:
    """The download_doc URL of a file; absolute when `base_url` (the API's own address) is given, as Chatchat's are,
    so that a link shown by a UI on another port or forwarded by a bot still opens."""
    query = urlencode({"knowledge_base_name": kb_name, "file_name": file_name}, quote_via=quote)
    return f"{base_url.rstrip('/')}/knowledge_base/download_doc?{query}"


def markdown_citations(results: Sequence[SearchResult], kb_name: str | None, base_url: str = "") -> list[str]:
    """One Markdown string per chunk: number, file (a download link when `kb_name` is given), page, text."""
    if not results:
        return [NOTHING_FOUND]
    docs = []
    for number, result in enumerate(results, start=1):
        source = _source(result)
        link = _link(result, kb_name, base_url)
        name = f"[{source}]({link})" if link else f"[{source}]"
        docs.append(f"出处 [{number}] {name}{_page(result)}\n\n{result.page_content}")
    return docs


def _link(result: SearchResult, kb_name: str | None, base_url: str) -> str:
    """A web result's page, a KB file's download_doc URL, or "" (temporary files cannot be downloaded)."""
    if result.metadata.get("url"):
        return str(result.metadata["url"])
    kb = str(result.metadata.get("kb") or kb_name or "")  # several KBs: each chunk names its own
    return download_link(kb, _source(result), base_url) if kb else ""


def plain_sources(results: Sequence[SearchResult]) -> str:
    """A trailing "Sources" block for answers that are plain text (the OpenAI-compatible route)."""
    if not results:
        return f"\n\n{NOTHING_FOUND}"
    lines = [f"[{number}] {_source(result)}{_page(result)}" for number, result in enumerate(results, start=1)]
    return "\n\n来源 / Sources:\n" + "\n".join(lines)
