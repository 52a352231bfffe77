"""Alembic environment. The app passes its own connection; the alembic CLI falls back to the settings' URL."""

from __future__ import annotations

from alembic import context

from server.db.models import Base


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite can only ALTER tables by copying them
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from configs import load_settings
    from server.db.engine import make_engine

    engine = make_engine(load_settings().sqlalchemy_url)
    with engine.begin() as conn:
        _run(conn)


_main()
