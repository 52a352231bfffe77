"""KB summaries (Chatchat 0.2's kb_summary_api): an LLM summarises each file map-reduce over its chunks, and the
summaries go into the KB's summary index (server/knowledge_base/summaries.py) for whole-document questions.

Map: the file's chunks, in order, in batches of about MAP_CHARS characters, each summarised. Reduce: the partial
summaries, joined in groups of at least two, summarised again until one is left. Every check that can fail
before the work (unknown KB or file, no model) raises first, so it is a plain HTTP status.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool

from server.chat.llm_client import ChatParams, LlmClient, collect
from server.chat.models import LlmEndpoint, LlmRegistry
from server.chat.prompts import PromptTemplates
from server.db.models import KnowledgeBase
from server.errors import FileNotInKnowledgeBase, FileTooLarge, InvalidInput, LlmUpstreamError, ZhikuError
from server.knowledge_base.catalog import KbCatalog
from server.knowledge_base.search import SearchQuery, SearchResult, SearchService
from server.knowledge_base.storage import KbStorage
from server.knowledge_base.summaries import FileSummary, SummaryIndexes

MAP_CHARS = 3000
"""Text per summarising call: a few chunks, well inside a small model's context."""
MAX_MAP_CALLS = 32
"""A file longer than this many batches (about 96,000 characters) is refused rather than costing hundreds of calls."""

Event = dict[str, Any]


@dataclass(frozen=True)
class SummaryRequest:
    model_name: str | None = None
    params: ChatParams = field(default_factory=ChatParams)
    file_description: str = ""


class SummaryService:
    def __init__(
        self,
        *,
        registry: LlmRegistry,
        client: LlmClient,
        prompts: PromptTemplates,
        catalog: KbCatalog,
        storage: KbStorage,
        search: SearchService,
        index: SummaryIndexes,
    ) -> None:
        self._registry = registry
        self._client = client
        self._prompts = prompts
        self._catalog = catalog
        self._storage = storage
        self._search = search
        self._index = index

    async def summarize_file(self, kb_name: str, file_name: str, request: SummaryRequest) -> FileSummary:
        """Summarise one file of the KB and store the summary."""
        kb, endpoint = self._check(kb_name, request)
        texts = await run_in_threadpool(self._file_texts, kb, file_name)
        summary = await self._map_reduce(endpoint, texts, request)
        return await run_in_threadpool(
            self._index.put, kb, file_name, summary, chunk_count=len(texts), llm=endpoint.name
        )

    async def summarize_chunks(self, kb_name: str, doc_ids: Sequence[str], request: SummaryRequest) -> str:
        """A summary of the given chunks, not stored (as Chatchat's summary_doc_ids_to_vector_store)."""
        kb, endpoint = self._check(kb_name, request)
        if not doc_ids:
            raise InvalidInput("doc_ids is empty; send the ids of the chunks to summarise (see search_docs)")
        chunks = await run_in_threadpool(self._storage.store(kb).get, list(doc_ids))
        if len(chunks) < len(set(doc_ids)):
            raise FileNotInKnowledgeBase(f"{len(set(doc_ids)) - len(chunks)} of the doc_ids are not in {kb_name!r}")
        return await self._map_reduce(endpoint, [chunk.text for chunk in chunks], request)

    async def recreate(self, kb_name: str, request: SummaryRequest) -> AsyncGenerator[Event, None]:
        """Summarise every file again, one progress event per file (a failed file is reported and skipped)."""
        kb, _ = self._check(kb_name, request)
        names = await run_in_threadpool(self._catalog.file_names, kb)
        await run_in_threadpool(self._index.clear, kb)
        return self._each_file(kb_name, names, request)

    def search(self, kb_name: str, query: str, top_k: int) -> list[SearchResult]:
        """The KB's file summaries closest to `query` (enabled files still in the KB only)."""
        kb = self._catalog.require(kb_name)
        return self._index.search(kb, query, top_k, set(self._catalog.enabled_file_names(kb)))

    async def _each_file(self, kb_name: str, names: list[str], request: SummaryRequest) -> AsyncGenerator[Event, None]:
        for index, name in enumerate(names, start=1):
            progress = {"total": len(names), "finished": index, "doc": name}
            try:
                await self.summarize_file(kb_name, name, request)
                yield {"code": 200, "msg": f"({index} / {len(names)}): {name}", **progress}
            except ZhikuError as error:
                yield {
                    "code": error.status_code,
                    "msg": f"({index} / {len(names)}): {name}: {error.message}",
                    **progress,
                }

    def _check(self, kb_name: str, request: SummaryRequest) -> tuple[KnowledgeBase, LlmEndpoint]:
        kb = self._catalog.require(kb_name)
        return kb, self._registry.resolve(request.model_name)

    def _file_texts(self, kb: KnowledgeBase, file_name: str) -> list[str]:
        chunks = self._search.search(kb.name, SearchQuery("", file_name=file_name))
        if not chunks:
            raise FileNotInKnowledgeBase(f"{file_name} has no chunks in {kb.name!r}; see list_files")
        return [chunk.page_content for chunk in chunks]

    async def _map_reduce(self, endpoint: LlmEndpoint, texts: list[str], request: SummaryRequest) -> str:
        batches = _batches(texts, MAP_CHARS, min_items=1)
        if len(batches) > MAX_MAP_CALLS:
            raise FileTooLarge(
                f"the text is {sum(map(len, texts)):,} characters; summaries cover at most about "
                f"{MAP_CHARS * MAX_MAP_CALLS:,} (split the file)"
            )
        partials = [await self._ask(endpoint, "summary_map", batch, request) for batch in batches]
        while len(partials) > 1:
            groups = _batches(partials, MAP_CHARS, min_items=2)
            partials = [await self._ask(endpoint, "summary_reduce", group, request) for group in groups]
        return partials[0]

    async def _ask(self, endpoint: LlmEndpoint, kind: str, text: str, request: SummaryRequest) -> str:
        prompt = self._prompts.render(kind, "default", text=text, description=request.file_description)
        answer, _, _ = await collect(
            self._client.stream(endpoint, [{"role": "user", "content": prompt}], request.params)
        )
        if not answer.strip():
            raise LlmUpstreamError(f"model {endpoint.name!r} answered an empty summary")
        return answer.strip()


def _batches(texts: Sequence[str], limit: int, *, min_items: int) -> list[str]:
    """Texts joined in order into batches of about `limit` characters, each of at least `min_items` texts (the
    last may hold fewer), so that reducing always makes progress."""
    batches: list[list[str]] = [[]]
    size = 0
    for text in texts:
        current = batches[-1]
        if len(current) >= min_items and size + len(text) > limit:
            batches.append([])
            current, size = batches[-1], 0
        current.append(text)
        size += len(text)
    if len(batches) > 1 and len(batches[-1]) < min_items:
        batches[-2] += batches.pop()
    return ["\n\n".join(batch) for batch in batches if batch]
