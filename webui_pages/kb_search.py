"""Hit testing (search a KB and see ranked chunks with scores) and rebuilding the vector store."""

from __future__ import annotations

import streamlit as st

from webui_pages.api_types import Chunk, KbInfo
from webui_pages.common import UiContext, search_mode_picker, shows_errors
from webui_pages.i18n import Translator
from webui_pages.kb_files import split_tags


def hit_title(t: Translator, rank: int, chunk: Chunk) -> str:
    page = t("hit_page", page=chunk.page) if chunk.page is not None else ""
    score = f"{chunk.score:.3f}" if chunk.score is not None else "-"
    return t("hit_title", rank=rank, score=score, file=chunk.source, page=page)


def render_search(ui: UiContext, kb: KbInfo) -> None:
    t, d = ui.t, ui.defaults
    with st.form(f"search_{kb.name}"):
        query = st.text_input(t("search_query"), key=f"search_q_{kb.name}")
        left, right = st.columns(2)
        top_k = left.number_input(t("top_k"), min_value=1, max_value=100, value=d.top_k)
        threshold = right.slider(t("score_threshold"), 0.0, 1.0, float(d.score_threshold), 0.01)
        inherited = kb.search_mode or d.search_mode
        mode = search_mode_picker(ui, inherited=inherited, key=f"search_mode_{kb.name}")
        tags = st.text_input(t("search_tags"), key=f"search_tags_{kb.name}")
        submitted = st.form_submit_button(t("search_button"), type="primary")
    if not submitted:
        return
    if not query.strip():
        st.warning(t("search_empty_query"))
        return
    hits = ui.api.search_docs(
        kb.name,
        query,
        top_k=int(top_k),
        score_threshold=float(threshold),
        search_mode=mode,
        tags_any=split_tags(tags),
    )
    if not hits:
        st.info(t("search_no_hits"))
        return
    st.caption(t("search_hits", n=len(hits)))
    for rank, chunk in enumerate(hits, start=1):
        with st.container(border=True):
            st.markdown(hit_title(t, rank, chunk))
            st.text(chunk.page_content)


def render_rebuild(ui: UiContext, kb: KbInfo) -> None:
    t, d = ui.t, ui.defaults
    st.warning(t("rebuild_help"))
    if not st.button(t("rebuild_button"), type="primary", key=f"rebuild_{kb.name}"):
        return
    bar = st.progress(0.0, text=t("rebuild_starting"))
    failed: dict[str, str] = {}
    with shows_errors(t):
        for event in ui.api.recreate_vector_store(kb.name, chunk_size=d.chunk_size, chunk_overlap=d.chunk_overlap):
            if event.code >= 400:
                st.error(event.msg)
                return
            if event.total:
                done = min(1.0, (event.finished or 0) / event.total)
                bar.progress(done, text=t("rebuild_progress", i=event.finished, n=event.total, doc=event.doc))
            failed.update(event.failed_files)
        bar.progress(1.0, text=t("rebuild_done"))
        st.success(t("rebuild_done"))
        if failed:
            st.error(t("upload_failed_title", n=len(failed)))
            st.table({t("col_file_name"): list(failed), t("col_reason"): list(failed.values())})
