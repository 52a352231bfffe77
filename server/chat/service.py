"""The chat flows behind the routes: plain LLM chat with saved conversations, and chat over retrieved chunks.

Each flow resolves the model, checks its input and starts the answer *before* returning its events, so every
failure that can happen up front becomes a proper HTTP status instead of an error inside an event stream.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from starlette.concurrency import run_in_threadpool

from server.chat.citations import markdown_citations, numbered_context, plain_sources
from server.chat.conversations import ChatMessage, ConversationStore
from server.chat.direct_answers import DirectAnswers
from server.chat.events import (
    Event,
    answer_events,
    direct_events,
    one_delta,
    pieces,
    saver,
    single,
    text_events,
    with_sources,
)
from server.chat.extractive import extractive_answer
from server.chat.llm_client import ChatDelta, ChatParams, LlmClient, started
from server.chat.models import LlmEndpoint, LlmRegistry
from server.chat.prompts import PromptTemplates
from server.chat.rewrite import QueryRewriter
from server.chat.summaries import SummaryService
from server.chat.temp_knowledge import TempKnowledgeStore
from server.chat.web_search import WebSearch
from server.errors import InvalidInput
from server.knowledge_base.search import SearchQuery, SearchResult, SearchService

log = logging.getLogger(__name__)

KbKind = Literal["knowledge_base_chat", "file_chat", "search_engine_chat"]

DIRECT_MODEL = "direct_answer"  # the OpenAI route's model name for an answer taken from a FAQ
NO_MATCHING_SENTENCE = "\n\n（没有与问题相符的句子，请查看出处。）/ No sentence matches the question; see the sources."


@dataclass(frozen=True)
class ChatOptions:
    model_name: str | None = None
    params: ChatParams = field(default_factory=ChatParams)
    prompt_name: str = "default"
    rewrite: bool | None = None  # KB chat: rewrite a follow-up before searching it; None: the setting


@dataclass(frozen=True)
class Links:
    """Where citations link: download_doc of `kb_name` (one KB; None: chunks name their own KB, or no links) at
    `base_url`."""

    kb_name: str | None = None
    base_url: str = ""


@dataclass(frozen=True)
class KbAnswer:
    """A started answer over retrieved chunks (`deltas` is None when no LLM is configured)."""

    results: list[SearchResult]
    deltas: AsyncGenerator[ChatDelta, None] | None
    endpoint: LlmEndpoint | None


class ChatService:
    def __init__(
        self,
        *,
        registry: LlmRegistry,
        client: LlmClient,
        prompts: PromptTemplates,
        conversations: ConversationStore,
        search: SearchService,
        temp: TempKnowledgeStore,
        web: WebSearch,
        summaries: SummaryService,
        direct: DirectAnswers,
        rewriter: QueryRewriter,
        rewrite_followups: bool = True,
    ) -> None:
        self.registry = registry
        self.client = client
        self.prompts = prompts
        self.conversations = conversations
        self._search = search
        self._temp = temp
        self.web = web
        self._summaries = summaries
        self._direct = direct
        self._rewriter = rewriter
        self._rewrite_followups = rewrite_followups

    async def knowledge_base_chat(
        self,
        query: str,
        kb_names: str | list[str],
        search: SearchQuery,
        *,
        history: list[ChatMessage],
        options: ChatOptions,
        stream: bool,
        base_url: str = "",
        with_summaries: bool = False,
    ) -> AsyncIterator[Event]:
        """Answer from one KB or several (fused); citations link to download_doc at `base_url` (the API's
        address). `with_summaries`: the file summary closest to the question comes first (one KB only)."""
        links = Links(kb_names if isinstance(kb_names, str) else None, base_url)
        kind: KbKind = "knowledge_base_chat"
        self.check_request(kind, options)
        searched = await self.standalone(query, history, options)
        retrieve = self._search.retriever(kb_names, replace(search, query=searched))
        if with_summaries:
            retrieve = self._with_summary(kb_names, searched, retrieve)
        results = await run_in_threadpool(retrieve)
        notes = {"rewritten_query": searched} if searched != query else {}
        direct = await run_in_threadpool(self._direct.find, kb_names, searched, results)
        if direct is not None:
            docs = markdown_citations([direct.result], links.kb_name, links.base_url)
            events = direct_events(direct, docs, notes)
            return events if stream else single(events, "answer")
        return await self.kb_chat(
            query, kind=kind, retrieve=lambda: results, links=links, history=history, options=options, stream=stream,
            notes=notes,
        )  # fmt: skip

    async def standalone(self, query: str, history: Sequence[ChatMessage], options: ChatOptions) -> str:
        """The question to search: a follow-up rewritten by the chat model when there is history and a model (and
        rewriting is on), else the question as asked."""
        wanted = self._rewrite_followups if options.rewrite is None else options.rewrite
        if not (wanted and history and self.registry.names()):
            return query
        endpoint = self.endpoint(options.model_name, options.params)
        return await self._rewriter.rewrite(endpoint, history, query, options.prompt_name)

    def check_request(self, kind: KbKind, options: ChatOptions) -> None:
        """An unknown model or prompt name fails before any work (a direct answer would not notice either)."""
        if self.registry.names():
            self.endpoint(options.model_name, options.params)
        self.prompts.get(kind, options.prompt_name)

    async def file_chat(
        self,
        query: str,
        knowledge_id: str,
        search: SearchQuery,
        *,
        history: list[ChatMessage],
        options: ChatOptions,
        stream: bool,
    ) -> AsyncIterator[Event]:
        """Answer from the files of upload_temp_docs."""

        def retrieve() -> list[SearchResult]:
            return self._temp.search(knowledge_id, query, top_k=search.top_k, score_threshold=search.score_threshold)

        return await self.kb_chat(
            query, kind="file_chat", retrieve=retrieve, links=Links(), history=history, options=options, stream=stream
        )

    def _with_summary(
        self, kb_names: str | list[str], query: str, retrieve: Callable[[], list[SearchResult]]
    ) -> Callable[[], list[SearchResult]]:
        if not isinstance(kb_names, str):
            raise InvalidInput("with_summaries needs one knowledge_base_name, not a list")

        def both() -> list[SearchResult]:
            return self._summaries.search(kb_names, query, 1) + retrieve()

        return both

    async def search_engine_chat(
        self,
        query: str,
        engine: str,
        top_k: int | None,
        *,
        history: list[ChatMessage],
        options: ChatOptions,
        stream: bool,
    ) -> AsyncIterator[Event]:
        """Answer from web search results; citations link to the pages. Events as knowledge-base chat."""
        self.web.check(engine)

        def retrieve() -> list[SearchResult]:
            return self.web.search(engine, query, top_k)

        kind: KbKind = "search_engine_chat"
        return await self.kb_chat(
            query, kind=kind, retrieve=retrieve, links=Links(), history=history, options=options, stream=stream
        )

    async def text_completion(self, query: str, options: ChatOptions, *, echo: bool) -> AsyncIterator[str]:
        """Chatchat's /other/completion: the model continues the `completion` template filled with `query`
        (sent as one user message: every endpoint here speaks the chat protocol)."""
        endpoint = self.endpoint(options.model_name, options.params)
        prompt = self.prompts.render("completion", options.prompt_name, input=query)
        deltas = await self.start(endpoint, [{"role": "user", "content": prompt}], options.params)
        return pieces(deltas, query if echo else "")

    async def completion(
        self, messages: list[ChatMessage], options: ChatOptions, kb_names: str | list[str] | None, search: SearchQuery
    ) -> tuple[str, AsyncGenerator[ChatDelta, None]]:
        """An OpenAI-style completion: the model's name and its answer; over KBs, the answer ends with its sources
        (a FAQ's stored answer needs no model: its "model" is then `direct_answer`)."""
        if kb_names is None:
            self.registry.require_configured()
            endpoint = self.endpoint(options.model_name, options.params)
            return endpoint.name, await self.start(endpoint, messages, options.params)
        if messages[-1]["role"] != "user" or not messages[-1]["content"].strip():
            raise InvalidInput("with knowledge_base_name, the last message must be the user's question")
        query = messages[-1]["content"]
        self.check_request("knowledge_base_chat", options)
        searched = await self.standalone(query, messages[:-1], options)
        results = await run_in_threadpool(self._search.retriever(kb_names, replace(search, query=searched)))
        direct = await run_in_threadpool(self._direct.find, kb_names, searched, results)
        if direct is not None:
            return DIRECT_MODEL, with_sources(one_delta(direct.answer), plain_sources([direct.result]))
        self.registry.require_configured()
        answer = await self.kb_answer(
            query, kind="knowledge_base_chat", retrieve=lambda: results, history=messages[:-1], options=options
        )
        assert answer.deltas is not None and answer.endpoint is not None  # require_configured() passed
        return answer.endpoint.name, with_sources(answer.deltas, plain_sources(answer.results))

    async def feedback(self, message_id: str, score: int, reason: str) -> None:
        await run_in_threadpool(self.conversations.feedback, message_id, score, reason)

    def endpoint(self, model_name: str | None, params: ChatParams) -> LlmEndpoint:
        endpoint = self.registry.resolve(model_name)
        if params.max_tokens is not None and params.max_tokens > endpoint.context_length:
            raise InvalidInput(
                f"max_tokens {params.max_tokens} is more than the context length of {endpoint.name} "
                f"({endpoint.context_length}); ask for fewer tokens or leave max_tokens out"
            )
        return endpoint

    async def start(
        self, endpoint: LlmEndpoint, messages: Sequence[ChatMessage], params: ChatParams
    ) -> AsyncGenerator[ChatDelta, None]:
        return await started(self.client.stream(endpoint, messages, params))

    async def llm_chat(
        self,
        query: str,
        *,
        conversation_id: str,
        history_len: int,
        history: list[ChatMessage],
        options: ChatOptions,
        stream: bool,
    ) -> AsyncIterator[Event]:
        """Events {"text", "message_id", "conversation_id"}; the turn is saved once the answer is complete."""
        endpoint = self.endpoint(options.model_name, options.params)
        prompt = self.prompts.render("llm_chat", options.prompt_name, input=query)
        if not history and conversation_id:
            history = await run_in_threadpool(self.conversations.history, conversation_id, history_len)
        messages = [*history, {"role": "user", "content": prompt}]
        deltas = await self.start(endpoint, messages, options.params)
        ids = {"message_id": uuid.uuid4().hex, "conversation_id": conversation_id or uuid.uuid4().hex}
        meta = {"model_name": endpoint.name, "prompt_name": options.prompt_name}
        save = saver(self.conversations, ids, query, meta)
        return text_events(deltas, ids, save) if stream else single(text_events(deltas, ids, save), "text")

    async def kb_answer(
        self,
        query: str,
        *,
        kind: KbKind,
        retrieve: Callable[[], list[SearchResult]],
        history: list[ChatMessage],
        options: ChatOptions,
    ) -> KbAnswer:
        """Retrieve, build the prompt from the numbered chunks and start the model's answer."""
        endpoint = self.endpoint(options.model_name, options.params) if self.registry.names() else None
        self.prompts.get(kind, options.prompt_name)  # an unknown prompt name fails before any work
        results = await run_in_threadpool(retrieve)
        if endpoint is None:
            return KbAnswer(results, None, None)
        prompt = self.kb_prompt(query, results, kind, options.prompt_name)
        deltas = await self.start(endpoint, [*history, {"role": "user", "content": prompt}], options.params)
        return KbAnswer(results, deltas, endpoint)

    def kb_prompt(self, query: str, results: Sequence[SearchResult], kind: KbKind, prompt_name: str) -> str:
        if results:
            return self.prompts.render(kind, prompt_name, context=numbered_context(results), question=query)
        # Nothing retrieved: the "empty" template of the same name when there is one, else its default.
        name = prompt_name if prompt_name in self.prompts.names("empty") else "default"
        return self.prompts.render("empty", name, question=query)

    async def kb_chat(
        self,
        query: str,
        *,
        kind: KbKind,
        retrieve: Callable[[], list[SearchResult]],
        links: Links,
        history: list[ChatMessage],
        options: ChatOptions,
        stream: bool,
        notes: Event | None = None,
    ) -> AsyncIterator[Event]:
        """Events {"answer": piece}… then {"docs": [citations], **notes}; one event when not streaming."""
        answer = await self.kb_answer(query, kind=kind, retrieve=retrieve, history=history, options=options)
        docs = markdown_citations(answer.results, links.kb_name, links.base_url)
        events = answer_events(answer.deltas, docs, _extracted(query, answer), notes)
        return events if stream else single(events, "answer")


def _extracted(query: str, answer: KbAnswer) -> str:
    """The extractive answer shown when no LLM is configured (and nothing to compute when one is)."""
    if answer.deltas is not None:
        return ""
    sentences = extractive_answer(query, answer.results)
    return f"\n\n{sentences}" if sentences else NO_MATCHING_SENTENCE
