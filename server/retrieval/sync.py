"""Keeping a KB's keyword index in step with its vector store.

Write paths call `keyword_added` / `keyword_removed` under the KB lock. A KB without an index file (made before
keyword search existed) is left alone by them, and one written by an older tokenizer is removed by them; the index
is then built from the store on the first keyword or hybrid search (`ensure_keyword_index`), or by a rebuild.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from pathlib import Path

from server.db import repository as repo
from server.db.engine import session_scope
from server.db.models import KnowledgeBase
from server.knowledge_base.context import KbContext
from server.knowledge_base.paths import kb_dir
from server.retrieval.keyword_index import KeywordIndex, keyword_index_path

_BUILD_BATCH = 500


def keyword_index(data_dir: Path, kb_name: str) -> KeywordIndex:
    return KeywordIndex(keyword_index_path(kb_dir(data_dir, kb_name)))


def building_keyword_index(data_dir: Path, kb_name: str) -> KeywordIndex:
    """A fresh index file beside the live one, to fill and then `swap_keyword_index` in."""
    folder = kb_dir(data_dir, kb_name)
    return KeywordIndex(folder / f".keyword_index-building-{uuid.uuid4().hex[:8]}.db")


def swap_keyword_index(data_dir: Path, kb_name: str, built: KeywordIndex) -> None:
    os.replace(built.path, keyword_index(data_dir, kb_name).path)


def keyword_added(data_dir: Path, kb_name: str, ids: Sequence[str], texts: Sequence[str]) -> None:
    index = _current_or_none(data_dir, kb_name)
    if index is not None:
        index.add(ids, texts)


def keyword_removed(data_dir: Path, kb_name: str, ids: Sequence[str]) -> None:
    index = _current_or_none(data_dir, kb_name)
    if index is not None:
        index.delete(ids)


def _current_or_none(data_dir: Path, kb_name: str) -> KeywordIndex | None:
    """The KB's index if it is up to date; an outdated one is deleted, to be rebuilt by the next search."""
    index = keyword_index(data_dir, kb_name)
    if index.is_current():
        return index
    index.drop()
    return None


def ensure_keyword_index(ctx: KbContext, kb: KnowledgeBase) -> KeywordIndex:
    """The KB's keyword index, built once from the store's chunks when the file does not exist yet."""
    index = keyword_index(ctx.data_dir, kb.name)
    if index.is_current():
        return index
    with ctx.locks(kb.name):
        if index.is_current():
            return index
        with session_scope(ctx.sessions) as session:
            ids = repo.kb_vs_ids(session, kb_id=kb.id)
        built = building_keyword_index(ctx.data_dir, kb.name)
        store = ctx.store_for(kb)
        try:
            built.create()
            for start in range(0, len(ids), _BUILD_BATCH):
                chunks = store.get(ids[start : start + _BUILD_BATCH])
                built.add([chunk.id for chunk in chunks], [chunk.text for chunk in chunks])
            swap_keyword_index(ctx.data_dir, kb.name, built)
        except BaseException:
            built.drop()
            raise
    return index
