"""The event streams of the chat flows: answer pieces and sources as Chatchat's events, a stream folded into one
event, the text pieces of a completion, the turn saved once its answer is complete."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable
from typing import Any

from server.chat.conversations import ConversationStore
from server.chat.direct_answers import DirectAnswer
from server.chat.llm_client import ChatDelta
from server.chat.models import HOW_TO_CONFIGURE
from server.errors import ZhikuError

log = logging.getLogger(__name__)

Event = dict[str, Any]

NO_LLM_ANSWER = (
    "（未配置大语言模型，这不是模型的回答：下面是从检索到的文档中摘录的句子。）\n"
    f"No LLM is configured, so this is not a model's answer: below are sentences extracted from the documents "
    f"retrieved for your question. To get answers, {HOW_TO_CONFIGURE}."
)


async def with_sources(deltas: AsyncGenerator[ChatDelta, None], sources: str) -> AsyncGenerator[ChatDelta, None]:
    try:
        async for delta in deltas:
            yield ChatDelta(delta.text, None, delta.usage)
        yield ChatDelta(sources, "stop")
    finally:
        await deltas.aclose()


async def one_delta(text: str) -> AsyncGenerator[ChatDelta, None]:
    yield ChatDelta(text, None)


async def direct_events(direct: DirectAnswer, docs: list[str], notes: Event) -> AsyncGenerator[Event, None]:
    """A FAQ's stored answer, then its source; `direct_answer` tells clients no model wrote it."""
    yield {"answer": direct.answer}
    source = direct.result.metadata
    yield {
        "docs": docs,
        **notes,
        "direct_answer": {
            "knowledge_base_name": direct.kb_name, "file_name": source.get("source"), "faq_id": source.get("faq_id"),
            "question": source.get("question"), "score": direct.result.score, "exact": direct.exact,
        },
    }  # fmt: skip


async def pieces(deltas: AsyncGenerator[ChatDelta, None], prefix: str) -> AsyncGenerator[str, None]:
    try:
        if prefix:
            yield prefix
        async for delta in deltas:
            if delta.text:
                yield delta.text
    finally:
        await deltas.aclose()


def saver(store: ConversationStore, ids: dict[str, str], query: str, meta: dict[str, Any]) -> Callable[[str], None]:
    def save(response: str) -> None:
        try:
            store.save_message(
                message_id=ids["message_id"],
                conversation_id=ids["conversation_id"],
                chat_type="llm_chat",
                query=query,
                response=response,
                meta=meta,
            )
        except ZhikuError as error:
            log.error("could not save message %s: %s", ids["message_id"], error.message)

    return save


async def text_events(
    deltas: AsyncGenerator[ChatDelta, None], ids: dict[str, str], save: Callable[[str], None]
) -> AsyncGenerator[Event, None]:
    parts: list[str] = []
    try:
        async for delta in deltas:
            if delta.text:
                parts.append(delta.text)
                yield {"text": delta.text, **ids}
    except ZhikuError as error:
        log.warning("answer stopped: %s", error.message)
        yield {"code": error.status_code, "msg": error.message, **ids}
    finally:
        await deltas.aclose()
        save("".join(parts))  # also when the client went away: the partial answer is what it saw


async def answer_events(
    deltas: AsyncGenerator[ChatDelta, None] | None, docs: list[str], extracted: str = "", notes: Event | None = None
) -> AsyncGenerator[Event, None]:
    """The answer's pieces, then {"docs": [...], **notes} (`notes`: how it was found, e.g. the rewritten query)."""
    if deltas is None:
        yield {"answer": NO_LLM_ANSWER}  # its own event: clients can tell the label from the extracted text
        yield {"answer": extracted}
    else:
        try:
            async for delta in deltas:
                if delta.text:
                    yield {"answer": delta.text}
        except ZhikuError as error:
            log.warning("answer stopped: %s", error.message)
            yield {"code": error.status_code, "msg": error.message}
        finally:
            await deltas.aclose()
    yield {"docs": docs, **(notes or {})}


async def single(events: AsyncGenerator[Event, None], text_key: str) -> AsyncGenerator[Event, None]:
    """All events merged into one: the text pieces joined, the other fields kept (an error wins)."""
    merged: Event = {text_key: ""}
    try:
        async for event in events:
            if "code" in event:
                merged = {key: value for key, value in event.items() if key != text_key}
                break
            merged[text_key] += event.pop(text_key, "")
            merged.update(event)
    finally:
        await events.aclose()
    yield merged
