"""Keeping the registry, the content folders and the vector stores in step (used by init_database.py)."""

from __future__ import annotations

from pathlib import Path

from server.db import repository as repo
from server.db.engine import session_scope
from server.knowledge_base.context import KbContext
from server.knowledge_base.ingest import file_sha256
from server.knowledge_base.paths import content_file, list_content_files
from server.knowledge_base.writer import load_kb, remove_files


def folder_kb_names(data_dir: Path) -> list[str]:
    """Knowledge bases found on disk: every folder of data_dir that has a content/ folder."""
    if not data_dir.is_dir():
        return []
    return sorted(p.name for p in data_dir.iterdir() if (p / "content").is_dir() and not p.name.startswith("."))


def registered_files(ctx: KbContext, kb_name: str) -> dict[str, tuple[str, bool]]:
    """{file_name: (sha256, custom_docs)} for the KB's registered files."""
    kb = load_kb(ctx, kb_name)
    with session_scope(ctx.sessions) as session:
        return {row.file_name: (row.sha256, row.custom_docs) for row in repo.list_files(session, kb_id=kb.id)}


def changed_files(ctx: KbContext, kb_name: str) -> list[str]:
    """Content files that are new, or whose bytes differ from what was vectorized."""
    known = registered_files(ctx, kb_name)
    changed = []
    for name in list_content_files(ctx.data_dir, kb_name):
        entry = known.get(name)
        if entry is None or (not entry[1] and entry[0] != file_sha256(content_file(ctx.data_dir, kb_name, name))):
            changed.append(name)
    return changed


def prune_db(ctx: KbContext, kb_name: str) -> list[str]:
    """Drop registry rows (and vectors) of files that are gone from the content folder."""
    on_disk = set(list_content_files(ctx.data_dir, kb_name))
    gone = [name for name, (_, custom) in registered_files(ctx, kb_name).items() if name not in on_disk and not custom]
    if gone:
        with ctx.locks(kb_name):
            remove_files(ctx, load_kb(ctx, kb_name), gone)
    return gone


def prune_folder(ctx: KbContext, kb_name: str) -> list[str]:
    """Delete content files that were never vectorized into the registry."""
    known = registered_files(ctx, kb_name)
    stray = [name for name in list_content_files(ctx.data_dir, kb_name) if name not in known]
    for name in stray:
        content_file(ctx.data_dir, kb_name, name).unlink()
    return stray


def needs_build(ctx: KbContext, kb_name: str) -> bool:
    """True when a KB folder is not registered yet or has no vectors although it has files."""
    names = list_content_files(ctx.data_dir, kb_name)
    with session_scope(ctx.sessions) as session:
        kb = repo.get_kb(session, kb_name)
        if kb is None:
            return True
        return bool(names) and repo.count_chunks(session, kb_id=kb.id) == 0
