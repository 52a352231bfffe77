"""The dialogue page: LLM chat, knowledge-base chat and file chat, streamed from the API's /chat routes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import streamlit as st

from webui_pages.api_client import ApiError, kb_names
from webui_pages.api_types import ChatPiece
from webui_pages.chat_view import ChatMessage, conversation_markdown, render_history, render_sources, source_markdown
from webui_pages.common import UiContext, error_text, search_mode_picker, shows_errors
from webui_pages.kb_files import split_tags
from webui_pages.model_switch import model_switch

# mode (= prompt template type) → chat route
MODES = {"llm_chat": "chat", "knowledge_base_chat": "knowledge_base_chat", "file_chat": "file_chat"}
_MESSAGES = "chat_messages"


@dataclass(frozen=True)
class ChatOptions:
    mode: str
    model: str
    temperature: float
    history_len: int
    prompt_name: str
    kbs: tuple[str, ...] = ()  # several: the API fuses their results
    top_k: int = 3
    score_threshold: float = 0.0
    search_mode: str = ""  # "" = the KB's own default
    knowledge_id: str = ""
    tags: tuple[str, ...] = ()  # KB chat: only files with any of these tags answer


def history_payload(messages: list[ChatMessage], history_len: int) -> list[dict[str, str]]:
    """The last `history_len` rounds (question + answer) as the API's history list."""
    if history_len <= 0:
        return []
    return [{"role": m.role, "content": m.content} for m in messages[-2 * history_len :] if m.content]


def chat_payload(
    options: ChatOptions, query: str, history: list[dict[str, str]], conversation_id: str
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "query": query,
        "history": history,
        "model_name": options.model,
        "temperature": options.temperature,
        "prompt_name": options.prompt_name,
    }
    if options.mode == "llm_chat":
        payload["conversation_id"] = conversation_id
    else:
        payload["top_k"] = options.top_k
        payload["score_threshold"] = options.score_threshold
    if options.mode == "knowledge_base_chat":
        payload["knowledge_base_name"] = kb_names(options.kbs)
        if options.search_mode:
            payload["search_mode"] = options.search_mode
        if options.tags:
            payload["filter"] = {"tags_any": list(options.tags)}
    if options.mode == "file_chat":
        payload["knowledge_id"] = options.knowledge_id
    return payload


def render_dialogue_page(ui: UiContext) -> None:
    t = ui.t
    st.title(t("chat_title"))
    messages: list[ChatMessage] = st.session_state.setdefault(_MESSAGES, [])
    options = _sidebar(ui, messages)
    if not options.model:
        st.info(t("no_model_help"), icon=":material/info:")
    render_history(ui, messages)
    query = st.chat_input(t("chat_placeholder"), disabled=not _ready(ui, options))
    if query:
        _answer(ui, options, messages, query)
        st.rerun()


def _ready(ui: UiContext, options: ChatOptions) -> bool:
    if options.mode == "knowledge_base_chat" and not options.kbs:
        st.warning(ui.t("chat_need_kb"))
        return False
    if options.mode == "file_chat" and not options.knowledge_id:
        st.warning(ui.t("chat_need_files"))
        return False
    return True


def _sidebar(ui: UiContext, messages: list[ChatMessage]) -> ChatOptions:
    t, d = ui.t, ui.defaults
    with st.sidebar:
        mode = str(st.radio(t("chat_mode"), list(MODES), format_func=lambda m: t(f"mode_{m}"), key="chat_mode"))
        models = _models(ui)
        index = models.index(d.default_llm) if d.default_llm in models else 0
        model = st.selectbox(t("chat_model"), models, index=index, key="chat_model") if models else ""
        model_switch(ui, str(model or ""))
        temperature = st.slider(t("temperature"), 0.0, 2.0, float(d.temperature), 0.05, key="chat_temperature")
        history_len = st.number_input(t("history_len"), 0, 50, d.history_len, key="chat_history_len")
        templates = list(d.prompt_templates.get(mode) or ("default",))
        prompt_name = st.selectbox(t("prompt_template"), templates, key=f"chat_prompt_{mode}")
        extra = _mode_options(ui, mode)
        if st.button(t("chat_clear"), key="chat_clear"):
            messages.clear()
            st.rerun()
        st.download_button(
            t("chat_export"),
            conversation_markdown(t, messages),
            file_name="zhiku-chat.md",
            mime="text/markdown",
            disabled=not messages,
            on_click="ignore",
            key="chat_export",
        )
    return ChatOptions(mode, str(model or ""), float(temperature), int(history_len), str(prompt_name), **extra)


def _models(ui: UiContext) -> list[str]:
    try:
        return ui.api.list_models()
    except ApiError as error:
        st.caption(ui.t("chat_models_unavailable", detail=error_text(ui.t, error)))
        return []


def _mode_options(ui: UiContext, mode: str) -> dict[str, Any]:
    t, d = ui.t, ui.defaults
    if mode == "llm_chat":
        return {}
    top_k = int(st.number_input(t("top_k"), 1, 50, d.top_k, key="chat_top_k"))
    # 0.99 at most: the API reads 1.0 as Chatchat's "no filtering" (docs/chatchat-compat.md)
    top = 0.99
    start = min(d.score_threshold, top)
    threshold = float(st.slider(t("score_threshold"), 0.0, top, start, 0.01, key="chat_threshold"))
    if mode == "knowledge_base_chat":
        return {**_kb_options(ui), "top_k": top_k, "score_threshold": threshold}
    return {"knowledge_id": _temp_files(ui), "top_k": top_k, "score_threshold": threshold}


def _kb_options(ui: UiContext) -> dict[str, Any]:
    modes: dict[str, str] = {}  # name → its own search mode
    with shows_errors(ui.t):
        modes = {kb.name: kb.search_mode or ui.defaults.search_mode for kb in ui.api.list_kbs()}
    if not modes:
        return {"kbs": ()}
    names = list(modes)
    kbs = tuple(str(name) for name in st.multiselect(ui.t("chat_kb"), names, default=names[:1], key="chat_kbs"))
    own = {modes[name] for name in kbs}
    inherited = own.pop() if len(own) == 1 else "each"  # with no mode sent, each KB searches its own way
    mode = search_mode_picker(ui, inherited=inherited, key="chat_search_mode")
    tags = tuple(split_tags(st.text_input(ui.t("search_tags"), key="chat_tags")))
    return {"kbs": kbs, "search_mode": mode, "tags": tags}


def _temp_files(ui: UiContext) -> str:
    t, d = ui.t, ui.defaults
    files = st.file_uploader(t("chat_files"), type=list(d.file_types), accept_multiple_files=True, key="chat_files")
    if st.button(t("chat_files_upload"), disabled=not files, key="chat_files_go"):
        with shows_errors(t):
            prev = str(st.session_state.get("chat_knowledge_id", ""))
            knowledge_id, failed = ui.api.upload_temp_docs([(f.name, f.getvalue()) for f in files or []], prev_id=prev)
            st.session_state["chat_knowledge_id"] = knowledge_id
            for name, reason in failed.items():
                st.warning(t("failed_line", name=name, reason=reason))
    knowledge_id = str(st.session_state.get("chat_knowledge_id", ""))
    if knowledge_id:
        st.caption(t("chat_files_ready"))
    return knowledge_id


def _answer(ui: UiContext, options: ChatOptions, messages: list[ChatMessage], query: str) -> None:
    history = history_payload(messages, options.history_len)
    messages.append(ChatMessage("user", query))
    with st.chat_message("user"):
        st.markdown(query)
    reply = ChatMessage("assistant", "")
    with st.chat_message("assistant"):
        try:
            if options.model or options.mode == "knowledge_base_chat":  # no model: the API answers from the KB
                payload = chat_payload(options, query, history, _conversation_id())
                st.write_stream(_pieces(ui, options.mode, payload, reply))
            else:
                _sources_only(ui, options, query, reply)
        except ApiError as error:
            reply.error = error_text(ui.t, error)
            st.error(reply.error)
        if reply.notice:
            st.caption(reply.notice)
        render_sources(ui.t, reply.docs)
    messages.append(reply)


def _pieces(ui: UiContext, mode: str, payload: dict[str, Any], reply: ChatMessage) -> Iterator[str]:
    for piece in ui.api.chat(MODES[mode], payload):
        reply.docs.extend(piece.docs)
        reply.message_id = piece.message_id or reply.message_id
        reply.notice = _notice(ui, piece) or reply.notice
        if piece.text:
            reply.content += piece.text  # kept even when the stream breaks off later
            yield piece.text


def _notice(ui: UiContext, piece: ChatPiece) -> str:
    """What the answer's events say about how it was made: a FAQ's stored answer, a rewritten question."""
    if piece.direct_answer:
        score = piece.direct_answer.get("score")
        shown = f"{score:.2f}" if isinstance(score, int | float) else "—"
        return ui.t("chat_direct_answer", file=piece.direct_answer.get("file_name") or "", score=shown)
    if piece.rewritten_query:
        return ui.t("chat_rewritten", query=piece.rewritten_query)
    return ""


def _sources_only(ui: UiContext, options: ChatOptions, query: str, reply: ChatMessage) -> None:
    """No model: KB chat still finds and shows the sources, and says why there is no answer."""
    t = ui.t
    reply.content = t("no_model_answer")
    st.markdown(reply.content)
    if options.mode != "knowledge_base_chat":
        return
    hits = ui.api.search_docs(
        options.kbs,
        query,
        top_k=options.top_k,
        score_threshold=options.score_threshold,
        search_mode=options.search_mode,
    )
    reply.docs = [
        source_markdown(ui.api, t, str(hit.metadata.get("kb") or options.kbs[0]), rank, hit)
        for rank, hit in enumerate(hits, start=1)
    ]
    if not hits:
        reply.notice = t("search_no_hits")


def _conversation_id() -> str:
    return str(st.session_state.setdefault("chat_conversation_id", uuid.uuid4().hex))
