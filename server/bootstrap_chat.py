"""The LLM-facing services (chat, agent, summaries, models), built on one HTTP client and one model registry."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from configs import Settings
from configs.settings import LlmModelConfig
from server.chat.agent.service import AgentService
from server.chat.agent.tools import standard_tools
from server.chat.conversations import ConversationStore
from server.chat.direct_answers import DirectAnswers
from server.chat.llm_client import LlmClient, make_http_client
from server.chat.model_service import ModelService
from server.chat.models import LlmRegistry
from server.chat.prompts import PromptTemplates, load_prompt_templates
from server.chat.rewrite import QueryRewriter
from server.chat.service import ChatService
from server.chat.summaries import SummaryService
from server.chat.temp_knowledge import TempKnowledgeStore
from server.chat.web_search import WebSearch
from server.chat.worker_client import WorkerClient
from server.embeddings import EmbeddingPool
from server.finetune.registry import tuned_models
from server.knowledge_base.catalog import KbCatalog
from server.knowledge_base.search import SearchQuery, SearchResult, SearchService
from server.knowledge_base.storage import KbStorage
from server.knowledge_base.summaries import SummaryIndexes

PROMPT_TEMPLATES_FILE = Path(__file__).resolve().parents[1] / "configs" / "prompt_templates.yaml"


@dataclass
class ChatParts:
    """The LLM-facing services, on one HTTP client and one model registry."""

    chat: ChatService
    agent: AgentService
    summaries: SummaryService
    models: ModelService
    prompts: PromptTemplates
    client: LlmClient


def build_chat(
    settings: Settings,
    catalog: KbCatalog,
    storage: KbStorage,
    search: SearchService,
    temp: TempKnowledgeStore,
    embeddings: EmbeddingPool,
) -> ChatParts:
    """Chat, agent, summary and model services; the agent's KB tool sees the KBs of `catalog`."""
    http = make_http_client()
    client = LlmClient(http)
    registry = LlmRegistry(settings.llm_models, settings.default_llm, worker_base_url(settings), tuned_finder(settings))
    prompts = load_prompt_templates(PROMPT_TEMPLATES_FILE)
    index = SummaryIndexes(storage, embeddings)
    summaries = SummaryService(
        registry=registry, client=client, prompts=prompts, catalog=catalog, storage=storage,
        search=search, index=index,
    )  # fmt: skip
    web = settings.web_search
    engines = WebSearch(web.engines, default=web.default_engine, top_k=web.top_k, timeout_s=web.timeout_s)
    chat = ChatService(
        registry=registry, client=client, prompts=prompts, conversations=ConversationStore(catalog.sessions),
        search=search, temp=temp, web=engines, summaries=summaries,
        direct=DirectAnswers(catalog, settings.kb.direct_answer_threshold),
        rewriter=QueryRewriter(client, prompts, max_chars=settings.limits.max_query_chars),
        rewrite_followups=settings.kb.rewrite_followups,
    )  # fmt: skip

    def search_kb(kb: str, query: str) -> list[SearchResult]:
        return search.search(kb, SearchQuery(query))

    agent = AgentService(
        registry=registry, client=client, prompts=prompts, tools=standard_tools(catalog.names, search_kb)
    )
    models = ModelService(registry, client, WorkerClient(http, worker_base_url(settings)))
    return ChatParts(chat, agent, summaries, models, prompts, client)


def tuned_finder(settings: Settings) -> Callable[[], Mapping[str, LlmModelConfig]]:
    """Lists the fine-tuned models (server.finetune) when asked, so a run that finishes is served at once."""
    return partial(tuned_models, settings.finetune.resolved_dir(settings.data_dir), settings.llm_models)


def worker_base_url(settings: Settings) -> str:
    """The OpenAI base URL of our LLM worker (a wildcard bind address is reached on localhost)."""
    host = settings.llm_worker.host
    host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.llm_worker.port}/v1"
