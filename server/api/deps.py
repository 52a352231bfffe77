"""FastAPI dependencies: each route takes the one service it calls (built once in bootstrap), and the API key check."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from server.auth.audit import AuditLog
from server.auth.keys import KeyService
from server.bootstrap import Services
from server.chat.agent.service import AgentService
from server.chat.model_service import ModelService
from server.chat.prompts import PromptTemplates
from server.chat.service import ChatService
from server.chat.summaries import SummaryService
from server.chat.temp_knowledge import TempKnowledgeStore
from server.embeddings import EmbeddingPool
from server.finetune.runs import FinetuneRuns
from server.jobs.service import JobService
from server.jobs.sync import FolderSync
from server.knowledge_base.chunks import ChunkService
from server.knowledge_base.faq import FaqService
from server.knowledge_base.files import FileService
from server.knowledge_base.porter import KbPorter
from server.knowledge_base.rebuild import RebuildService
from server.knowledge_base.search import SearchService
from server.knowledge_base.service import KnowledgeBaseService
from server.server_configs import ServerConfigs


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


AppServices = Annotated[Services, Depends(get_services)]


def _knowledge_bases(services: AppServices) -> KnowledgeBaseService:
    return services.knowledge_bases


def _files(services: AppServices) -> FileService:
    return services.files


def _jobs(services: AppServices) -> JobService:
    return services.jobs


def _folder_sync(services: AppServices) -> FolderSync:
    return services.folder_sync


def _chunks(services: AppServices) -> ChunkService:
    return services.chunks


def _search(services: AppServices) -> SearchService:
    return services.search


def _rebuild(services: AppServices) -> RebuildService:
    return services.rebuild


def _embeddings(services: AppServices) -> EmbeddingPool:
    return services.embeddings


def _chat(services: AppServices) -> ChatService:
    return services.chat


def _agent(services: AppServices) -> AgentService:
    return services.agent


def _summaries(services: AppServices) -> SummaryService:
    return services.summaries


def _models(services: AppServices) -> ModelService:
    return services.models


def _finetune(services: AppServices) -> FinetuneRuns:
    return services.finetune


def _temp_knowledge(services: AppServices) -> TempKnowledgeStore:
    return services.temp_knowledge


def _prompts(services: AppServices) -> PromptTemplates:
    return services.prompts


def _keys(services: AppServices) -> KeyService:
    return services.keys


def _audit(services: AppServices) -> AuditLog:
    return services.audit


def _porter(services: AppServices) -> KbPorter:
    return services.porter


def _faq(services: AppServices) -> FaqService:
    return services.faq


def _server_configs(services: AppServices) -> ServerConfigs:
    return services.server_configs


KnowledgeBases = Annotated[KnowledgeBaseService, Depends(_knowledge_bases)]
Files = Annotated[FileService, Depends(_files)]
Chunks = Annotated[ChunkService, Depends(_chunks)]
Jobs = Annotated[JobService, Depends(_jobs)]
Sync = Annotated[FolderSync, Depends(_folder_sync)]
Search = Annotated[SearchService, Depends(_search)]
Rebuild = Annotated[RebuildService, Depends(_rebuild)]
Embeddings = Annotated[EmbeddingPool, Depends(_embeddings)]
Chat = Annotated[ChatService, Depends(_chat)]
Agent = Annotated[AgentService, Depends(_agent)]
Summaries = Annotated[SummaryService, Depends(_summaries)]
Models = Annotated[ModelService, Depends(_models)]
Finetune = Annotated[FinetuneRuns, Depends(_finetune)]
TempKnowledge = Annotated[TempKnowledgeStore, Depends(_temp_knowledge)]
Prompts = Annotated[PromptTemplates, Depends(_prompts)]
Configs = Annotated[ServerConfigs, Depends(_server_configs)]
Keys = Annotated[KeyService, Depends(_keys)]
Audit = Annotated[AuditLog, Depends(_audit)]
Porter = Annotated[KbPorter, Depends(_porter)]
Faq = Annotated[FaqService, Depends(_faq)]

_bearer = HTTPBearer(auto_error=False)


def bearer_scheme(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    """Declares the Bearer scheme for /docs ("Authorize"); server.api.guards.ApiKeyGuard checks the key before a
    request's body is read, server.api.access.authorize what the key may do."""
