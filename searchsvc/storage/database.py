"""Engine creation, SQLite pragmas and automatic Alembic migrations."""

from __future__ import annotations

import fcntl
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from searchsvc.errors import ConfigError, NotFoundError, ReadOnlyDatabaseError, StorageError


class NoDatabaseError(NotFoundError):
    """A read-only command found no database to read (and created none)."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"{what}: run `searchsvc ingest PATH` to create one, or point --data-dir / SEARCHSVC_DATA_DIR "
            "(or SEARCHSVC_DATABASE_URL) at an existing one"
        )


def migrations_dir() -> Path:
    """The Alembic scripts, from the installed package ``searchsvc.migrations`` (the repository's
    ``migrations/`` folder, installed under that name), editable install or not."""
    return Path(str(resources.files("searchsvc.migrations")))


SQLITE_BUSY_SECONDS = 30.0  # how long a SQLite connection waits for another process's lock


def create_db_engine(url: str, create: bool = True) -> Engine:
    """An engine for any SQLAlchemy URL; SQLite gets WAL, foreign keys and a busy timeout.

    With ``create=False`` a SQLite file that does not exist is an error, not a new empty database.
    """
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigError(f"invalid database URL {url!r}: {exc}; set SEARCHSVC_DATABASE_URL") from exc
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            if not create and not Path(parsed.database).exists():
                raise NoDatabaseError(f"no searchsvc database at {parsed.database}")
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_SECONDS})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(url, pool_pre_ping=True)
    event.listen(engine, "handle_error", _refuse_writes_on_a_standby)
    return engine


READ_ONLY_SQLSTATE = "25006"  # read_only_sql_transaction: what a hot standby answers to any write


def _refuse_writes_on_a_standby(context: Any) -> None:
    """A write on a read replica becomes one clear error (raised from SQLAlchemy's error hook)."""
    if getattr(context.original_exception, "sqlstate", None) == READ_ONLY_SQLSTATE:
        raise ReadOnlyDatabaseError(
            "this server's database is a read-only standby (a read replica): it answers searches; send writes "
            "to a searchsvc whose SEARCHSVC_DATABASE_URL is the primary"
        ) from context.original_exception


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    _enable_wal(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_SECONDS * 1000)}")
    cursor.close()


def _enable_wal(cursor: sqlite3.Cursor) -> None:
    """Switch the file to WAL once. SQLite answers "database is locked" at once, without waiting on the busy
    timeout, when another process holds the file while the mode changes (several processes opening a new
    database together), so the change is retried here for as long as that timeout."""
    deadline = time.monotonic() + SQLITE_BUSY_SECONDS
    delay = 0.01
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def alembic_config() -> Config:
    folder = migrations_dir()
    if not (folder / "env.py").is_file():
        raise ConfigError(f"migrations not found at {folder}; reinstall searchsvc (pip install searchsvc)")
    config = Config()
    config.set_main_option("script_location", str(folder))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` inside one transaction."""
    config = alembic_config()
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    except Exception as exc:
        raise StorageError(f"database migration failed on {engine.url!r}: {exc}") from exc


# Any constant shared by every searchsvc process: the key of PostgreSQL's advisory lock for migrations.
_PG_MIGRATION_LOCK = 0x5EA2C45C


@contextmanager
def migration_lock(engine: Engine) -> Iterator[None]:
    """Hold a lock that every process migrating this database takes: two server workers starting
    on a new database would otherwise both create its tables, and one would fail."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_MIGRATION_LOCK})
                conn.commit()
        return
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def downgrade(engine: Engine, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def open_database(url: str, create: bool = True) -> tuple[Engine, sessionmaker[Session]]:
    """Create the engine, bring the schema to head if it is behind, return a session factory.

    With ``create=False`` (read-only commands) nothing is created: no file, no folder, no schema in an
    empty database; an existing database of an older schema is still upgraded.
    """
    engine = create_db_engine(url, create)
    revision = current_revision(engine)
    if revision is None and not create:
        engine.dispose()
        raise NoDatabaseError(f"the database at {engine.url!r} holds no searchsvc data")
    if revision != head_revision():
        with migration_lock(engine):
            # Another process (a second server worker, a CLI run) may have migrated while we waited.
            if current_revision(engine) != head_revision():
                upgrade(engine)
    return engine, sessionmaker(engine, expire_on_commit=False)
