"""Conversations and their messages in the registry database: history for follow-up questions, feedback."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.db.engine import session_scope
from server.db.models import Conversation, Message
from server.errors import MessageNotFound

ChatMessage = dict[str, str]


class ConversationStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def history(self, conversation_id: str, limit: int = -1) -> list[ChatMessage]:
        """The conversation's earlier turns as chat messages, oldest first; the last `limit` turns (-1: all)."""
        if not conversation_id or limit == 0:
            return []
        query = select(Message.query, Message.response).where(Message.conversation_id == conversation_id)
        query = query.order_by(Message.created_at.desc(), Message.id.desc())
        if limit > 0:
            query = query.limit(limit)
        with session_scope(self._sessions) as session:
            rows = list(session.execute(query))
        messages: list[ChatMessage] = []
        for question, answer in reversed(rows):
            messages.append({"role": "user", "content": question})
            if answer:
                messages.append({"role": "assistant", "content": answer})
        return messages

    def save_message(
        self,
        *,
        message_id: str,
        conversation_id: str,
        chat_type: str,
        query: str,
        response: str,
        meta: Mapping[str, Any],
    ) -> None:
        """Store one finished turn, creating its conversation on first use."""
        with session_scope(self._sessions) as session:
            if session.get(Conversation, conversation_id) is None:
                session.add(Conversation(id=conversation_id, name=query[:64], chat_type=chat_type))
                session.flush()
            session.add(
                Message(
                    id=message_id,
                    conversation_id=conversation_id,
                    chat_type=chat_type,
                    query=query,
                    response=response,
                    meta=dict(meta),
                )
            )

    def feedback(self, message_id: str, score: int, reason: str) -> None:
        with session_scope(self._sessions) as session:
            message = session.get(Message, message_id)
            if message is None:
                raise MessageNotFound(
                    f"no message {message_id!r}; use the message_id sent with a /chat/chat answer "
                    "(it is stored once the answer is complete)"
                )
            message.feedback_score = score
            message.feedback_reason = reason
