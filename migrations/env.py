"""Alembic environment: the database URL comes from searchsvc's own settings.

``searchsvc db upgrade`` (and every command, automatically) passes an open
connection in ``config.attributes["connection"]``; running ``alembic -c
migrations/alembic.ini upgrade head`` by hand reads the same settings object.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from searchsvc.config import Settings
from searchsvc.storage.schema import Base

target_metadata = Base.metadata


def run_with_connection(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_with_connection(connection)
        return
    engine = create_engine(Settings().resolved_database_url)
    with engine.begin() as conn:
        run_with_connection(conn)


if context.is_offline_mode():
    context.configure(url=Settings().resolved_database_url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
