"""Follow-up questions rewritten into standalone ones before retrieval.

"那它的默认值呢？" retrieves nothing useful on its own: the chunks that answer it are about what "它" stood for two
turns ago. With a chat model configured and a history sent, the model first rewrites the question into one that
names what it refers to; that question is searched, and shown with the sources, so the user sees what was looked up.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from server.chat.conversations import ChatMessage
from server.chat.llm_client import ChatParams, LlmClient, collect
from server.chat.models import LlmEndpoint
from server.chat.prompts import PromptTemplates

log = logging.getLogger(__name__)

_TURNS = 3  # the last turns the rewrite sees: follow-ups refer to what was just said
_ANSWER_CHARS = 300  # of each earlier answer: enough to name its subject, not to drown the question
_MAX_TOKENS = 128
_LABEL = re.compile(
    r"^\s*(改写后的问题|独立问题|问题|standalone question|rewritten question|question)\s*[:：]\s*", re.I
)
_QUOTES = "\"'“”‘’「」『』`"


class QueryRewriter:
    def __init__(self, client: LlmClient, prompts: PromptTemplates, *, max_chars: int) -> None:
        self._client = client
        self._prompts = prompts
        self._max_chars = max_chars  # the bound on a search query (limits.max_query_chars)

    async def rewrite(
        self, endpoint: LlmEndpoint, history: Sequence[ChatMessage], question: str, prompt_name: str = "default"
    ) -> str:
        """The question as one that stands alone; the question itself when the model's text is not one (empty,
        or longer than a query may be)."""
        name = prompt_name if prompt_name in self._prompts.names("rewrite") else "default"
        prompt = self._prompts.render("rewrite", name, history=render_history(history), question=question)
        params = ChatParams(temperature=0.0, max_tokens=min(_MAX_TOKENS, endpoint.max_new_tokens))
        text, _, _ = await collect(self._client.stream(endpoint, [{"role": "user", "content": prompt}], params))
        rewritten = cleaned(text)
        if not rewritten or len(rewritten) > self._max_chars:
            log.info("rewrite of %r not used: %d characters came back", question[:60], len(rewritten))
            return question
        log.debug("rewrote %r as %r", question[:60], rewritten[:60])
        return rewritten


def render_history(history: Sequence[ChatMessage]) -> str:
    """The last turns as "用户：…" / "助手：…" lines (answers shortened)."""
    recent = [message for message in history if message.get("role") in ("user", "assistant")][-2 * _TURNS :]
    lines = []
    for message in recent:
        content = " ".join(str(message.get("content", "")).split())
        if message["role"] == "assistant":
            lines.append(f"助手 / Assistant: {content[:_ANSWER_CHARS]}")
        else:
            lines.append(f"用户 / User: {content}")
    return "\n".join(lines)


def cleaned(text: str) -> str:
    """The model's first line without a label ("改写后的问题：") or quotes around it."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return _LABEL.sub("", line).strip().strip(_QUOTES).strip()
