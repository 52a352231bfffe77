"""Zhiku in LangChain apps: the Chinese-aware splitter as a `TextSplitter`, and a knowledge base as a retriever.

    from server.integrations.langchain import ZhikuRetriever, ZhikuTextSplitter

    splitter = ZhikuTextSplitter(chunk_size=250, chunk_overlap=50)
    chunks = splitter.split_documents(docs)          # headings and chunk_index in each chunk's metadata

    retriever = ZhikuRetriever(base_url="http://127.0.0.1:7861", knowledge_base_name="samples", top_k=4)
    retriever.invoke("如何上传文件？")                # LangChain Documents, best first, metadata["score"] in [0, 1]

The retriever talks to a running Zhiku API over HTTP (POST /knowledge_base/search_docs), so the app needs neither
the models nor the data on its own machine.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import httpx
from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LcDocument
from langchain_core.retrievers import BaseRetriever
from langchain_text_splitters import TextSplitter
from pydantic import Field, SecretStr

from server.documents import Document
from server.retrieval.modes import SearchMode
from server.splitter import ChineseRecursiveTextSplitter, chunk_length, split_documents


def _units(text: str) -> int:
    return math.ceil(chunk_length(text))


class ZhikuTextSplitter(TextSplitter):
    """Zhiku's splitter: breaks at Chinese sentence ends first; lengths count a Chinese character as one unit and
    an ASCII character as half. `split_documents` also keeps Markdown heading paths (metadata["headings"])."""

    def __init__(self, chunk_size: int = 250, chunk_overlap: int = 50, *, zh_title_enhance: bool = False) -> None:
        self._splitter = ChineseRecursiveTextSplitter(chunk_size, chunk_overlap)  # raises InvalidInput first
        super().__init__(chunk_size=chunk_size, chunk_overlap=chunk_overlap, length_function=_units)
        self._zh_title_enhance = zh_title_enhance

    def split_text(self, text: str) -> list[str]:
        return self._splitter.split_text(text)

    def split_documents(self, documents: Iterable[LcDocument]) -> list[LcDocument]:
        ours = [Document(doc.page_content, dict(doc.metadata)) for doc in documents]
        chunks = split_documents(
            ours,
            chunk_size=self._chunk_size,
            chunk_overlap=self._chunk_overlap,
            zh_title_enhance=self._zh_title_enhance,
        )
        return [LcDocument(page_content=chunk.page_content, metadata=chunk.metadata) for chunk in chunks]


class ZhikuSearchError(RuntimeError):
    """The Zhiku API refused the search or could not be reached; `status` is None when it was not reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ZhikuRetriever(BaseRetriever):
    """Chunks of one or several Zhiku knowledge bases for a query, through the HTTP API."""

    base_url: str = "http://127.0.0.1:7861"
    knowledge_base_name: str | list[str] = Field(description="one KB, or several whose results are fused")
    top_k: int | None = Field(None, description="how many chunks; None: the server's kb.top_k")
    score_threshold: float | None = Field(None, ge=0.0, le=1.0, description="keep chunks scoring at least this")
    search_mode: SearchMode | None = Field(None, description="dense, keyword or hybrid; None: the KB's own")
    filter: dict[str, Any] = Field(default_factory=dict, description="metadata every chunk must have, e.g. source")
    api_key: SecretStr | None = None
    timeout_s: float = 60.0

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[LcDocument]:
        try:
            response = httpx.post(self._url(), json=self._body(query), headers=self._headers(), timeout=self.timeout_s)
        except httpx.HTTPError as error:
            raise ZhikuSearchError(f"cannot reach the Zhiku API at {self.base_url}: {error}") from error
        return self._documents(response)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[LcDocument]:
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.post(self._url(), json=self._body(query), headers=self._headers())
        except httpx.HTTPError as error:
            raise ZhikuSearchError(f"cannot reach the Zhiku API at {self.base_url}: {error}") from error
        return self._documents(response)

    def _url(self) -> str:
        return f"{self.base_url.rstrip('/')}/knowledge_base/search_docs"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key.get_secret_value()}"} if self.api_key else {}

    def _body(self, query: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "query": query,
            "knowledge_base_name": self.knowledge_base_name,
            "metadata": self.filter,
        }
        optional = {"top_k": self.top_k, "score_threshold": self.score_threshold, "search_mode": self.search_mode}
        return body | {key: value for key, value in optional.items() if value is not None}

    @staticmethod
    def _documents(response: httpx.Response) -> list[LcDocument]:
        if response.status_code != 200:
            raise ZhikuSearchError(_message(response), response.status_code)
        return [_document(row) for row in _rows(response.json())]


def _rows(body: Any) -> Sequence[dict[str, Any]]:
    if not isinstance(body, list):
        raise ZhikuSearchError("the API answered search_docs with something other than a list of chunks")
    return body


def _document(row: dict[str, Any]) -> LcDocument:
    metadata = {**row.get("metadata", {}), "score": row.get("score")}
    return LcDocument(page_content=row["page_content"], metadata=metadata, id=row.get("id"))


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    return str(body.get("msg")) if isinstance(body, dict) and body.get("msg") else f"HTTP {response.status_code}"
