"""The chunk viewer/editor of one file: edit, delete or add chunks; chunks left alone are not sent at all."""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import streamlit as st

from webui_pages.api_types import Chunk, KbInfo
from webui_pages.common import UiContext, flash, shows_errors

CHUNKS_PER_PAGE = 20


def chunk_changes(
    original: Sequence[Chunk],
    edited: Mapping[str, str],
    deleted: Collection[str],
    new_texts: Sequence[str],
    file_name: str,
) -> dict[str, dict[str, Any] | None]:
    """The update_docs_by_id body: edited chunks, deleted ones (None) and new ones; unchanged chunks are left out."""
    changes: dict[str, dict[str, Any] | None] = {}
    for chunk in original:
        if chunk.id in deleted:
            changes[chunk.id] = None
        elif chunk.id in edited and edited[chunk.id].strip() and edited[chunk.id] != chunk.page_content:
            changes[chunk.id] = {"page_content": edited[chunk.id], "metadata": chunk.metadata}
    for text in new_texts:
        if text.strip():
            changes[uuid.uuid4().hex] = {"page_content": text, "metadata": {"source": file_name}}
    return changes


def render_chunks(ui: UiContext, kb: KbInfo) -> None:
    t = ui.t
    names = ui.api.list_file_names(kb.name)
    if not names:
        st.info(t("files_empty"))
        return
    file_name = str(st.selectbox(t("chunks_file"), names, key=f"chunks_file_{kb.name}"))
    chunks = ui.api.list_chunks(kb.name, file_name)
    pages = max(1, -(-len(chunks) // CHUNKS_PER_PAGE))
    left, right = st.columns([3, 1])
    left.caption(t("chunks_count", n=len(chunks)))
    page = int(right.number_input(t("page"), 1, pages, 1, key=f"chunks_page_{kb.name}_{file_name}"))
    shown = chunks[(page - 1) * CHUNKS_PER_PAGE : page * CHUNKS_PER_PAGE]
    round_key = f"chunks_round_{kb.name}"
    tag = f"{kb.name}_{file_name}_{st.session_state.get(round_key, 0)}"  # new keys after a save: fresh widgets
    with st.form(f"chunks_{tag}_{page}"):
        edited: dict[str, str] = {}
        deleted: set[str] = set()
        for number, chunk in enumerate(shown, start=(page - 1) * CHUNKS_PER_PAGE + 1):
            st.markdown(f"**#{number}** · `{chunk.id}`")
            st.caption(_meta_line(chunk))
            edited[chunk.id] = st.text_area(
                t("chunk_text"), chunk.page_content, key=f"chunk_{tag}_{chunk.id}", label_visibility="collapsed"
            )
            if st.checkbox(t("chunk_delete"), key=f"chunk_del_{tag}_{chunk.id}"):
                deleted.add(chunk.id)
        new_text = st.text_area(t("chunk_new"), "", key=f"chunk_new_{tag}")
        submitted = st.form_submit_button(t("chunks_save"), type="primary")
    if submitted:
        _save(ui, kb, chunk_changes(shown, edited, deleted, [new_text], file_name), round_key)


def _meta_line(chunk: Chunk) -> str:
    shown = {k: v for k, v in chunk.metadata.items() if k != "source"}
    return json.dumps(shown, ensure_ascii=False)[:300] if shown else ""


def _save(ui: UiContext, kb: KbInfo, changes: dict[str, dict[str, Any] | None], round_key: str) -> None:
    t = ui.t
    if not changes:
        st.info(t("chunks_nothing"))
        return
    with shows_errors(t):
        failed = ui.api.update_chunks(kb.name, changes)
        message = t("chunks_saved", n=len(changes) - len(failed))
        if failed:
            lines = "\n".join(t("failed_line", name=k, reason=v) for k, v in failed.items())
            flash(f"{message}\n\n{lines}", "warning")
        else:
            flash(message)
        st.session_state[round_key] = st.session_state.get(round_key, 0) + 1
        st.rerun()
