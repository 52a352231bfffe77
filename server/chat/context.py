"""Everything the chat routes share, built once at start-up (see server.bootstrap.build_chat_context)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from server.chat.conversations import ConversationStore
from server.chat.llm_client import LlmClient
from server.chat.models import LlmRegistry
from server.chat.prompts import PromptTemplates
from server.chat.service import ChatService
from server.chat.temp_knowledge import TempKnowledgeStore


@dataclass
class ChatContext:
    registry: LlmRegistry
    client: LlmClient
    prompts: PromptTemplates
    conversations: ConversationStore
    temp: TempKnowledgeStore
    ui_defaults: dict[str, Any] = field(default_factory=dict)
    """Defaults the Web UI shows (search, chunking, models), answered by /server/configs."""

    @property
    def service(self) -> ChatService:
        return ChatService(
            registry=self.registry, client=self.client, prompts=self.prompts, conversations=self.conversations
        )

    async def aclose(self) -> None:
        await self.client.aclose()
