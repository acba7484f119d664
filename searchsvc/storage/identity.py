"""Which database this is: its recorded id plus where it lives, so its index files are its own."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from searchsvc.errors import StorageError
from searchsvc.storage.schema import DatabaseIdentity


@dataclass(frozen=True)
class DatabaseId:
    """A database's id (made at schema creation) and location (file path, or server and name; no secrets).

    The index folder is named for the id alone: every process that reaches the database, however its URL
    is spelled (localhost or 127.0.0.1, a mount path), shares one index folder and one set of writer
    locks. A copied database file keeps the id: give the copy its own index folder (the default, when it
    lives in its own data folder) or run `searchsvc reindex` after pointing it at a shared one.
    """

    uuid: str
    location: str

    @property
    def namespace(self) -> str:
        """Short, stable name of this database's index folder."""
        return hashlib.sha256(self.uuid.encode()).hexdigest()[:16]

    def describe(self) -> str:
        return f"{self.location} (id {self.uuid})"


def database_location(url: str) -> str:
    """Where a database lives, without user or password: a resolved file path, or backend://host:port/name."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            return "sqlite::memory:"
        return f"sqlite:{Path(parsed.database).resolve()}"
    return f"{parsed.get_backend_name()}://{parsed.host or 'localhost'}:{parsed.port or ''}/{parsed.database or ''}"


def read_database_id(session: Session, url: str) -> DatabaseId:
    uuid = session.scalar(select(DatabaseIdentity.uuid).order_by(DatabaseIdentity.created_at).limit(1))
    if uuid is None:
        raise StorageError("the database has no identity row (migration 0004); run `searchsvc db upgrade`")
    return DatabaseId(uuid, database_location(url))
