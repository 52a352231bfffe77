"""Showing a conversation: messages, numbered sources, feedback thumbs, and the Markdown export."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import streamlit as st

from webui_pages.api_client import ApiClient, ApiError
from webui_pages.api_types import Chunk
from webui_pages.common import UiContext, error_text
from webui_pages.i18n import Translator


@dataclass
class ChatMessage:
    role: str  # "user" or "assistant"
    content: str
    docs: list[str] = field(default_factory=list)  # Markdown, one per numbered source
    message_id: str = ""
    notice: str = ""  # shown under an answer, e.g. "no chunk reached the threshold"
    error: str = ""  # why the answer stopped (the API failed)


def source_markdown(api: ApiClient, t: Translator, kb: str, rank: int, chunk: Chunk) -> str:
    """One numbered source like the chat routes send: file (a download link), page, and the chunk text."""
    link = api.url("/knowledge_base/download_doc", knowledge_base_name=kb, file_name=chunk.source)
    page = " · " + t("hit_page", page=chunk.page) if chunk.page is not None else ""
    return f"**[{rank}]** [{chunk.source}]({link}){page}\n\n{chunk.page_content}"


def conversation_markdown(t: Translator, messages: Sequence[ChatMessage]) -> str:
    """The conversation as a Markdown document (questions, answers and their sources)."""
    lines = [f"# {t('chat_export_title')}", ""]
    for message in messages:
        who = t("chat_you") if message.role == "user" else t("chat_assistant")
        lines += [f"## {who}", "", message.content, ""]
        if message.docs:
            lines += [f"### {t('chat_sources', n=len(message.docs))}", ""]
            for doc in message.docs:
                lines += [doc, ""]
    return "\n".join(lines)


def render_sources(t: Translator, docs: Sequence[str]) -> None:
    if docs:
        with st.expander(t("chat_sources", n=len(docs))):
            for doc in docs:
                st.markdown(doc)
                st.divider()


def render_history(ui: UiContext, messages: Sequence[ChatMessage]) -> None:
    for message in messages:
        with st.chat_message(message.role):
            st.markdown(message.content)
            if message.notice:
                st.caption(message.notice)
            if message.error:
                st.error(message.error)
            render_sources(ui.t, message.docs)
            if message.role == "assistant" and message.message_id:
                _feedback(ui, message.message_id)


def _feedback(ui: UiContext, message_id: str) -> None:
    key = f"feedback_{message_id}"
    st.feedback("thumbs", key=key, on_change=_send_feedback, args=(ui, message_id, key))
    sent = st.session_state.get(f"{key}_result")
    if sent:
        st.caption(sent)


def _send_feedback(ui: UiContext, message_id: str, key: str) -> None:
    thumbs = st.session_state.get(key)
    if thumbs is None:
        return
    try:
        ui.api.feedback(message_id, 100 if thumbs == 1 else 0)
        st.session_state[f"{key}_result"] = ui.t("chat_feedback_sent")
    except ApiError as error:  # a callback must not raise: the page would show a traceback
        st.session_state[f"{key}_result"] = error_text(ui.t, error)
