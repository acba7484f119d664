"""Vector stores: create (a new collection), describe, update, list, delete. Their files: ``files.py``."""

from __future__ import annotations

import secrets
import time
from typing import Any

from searchsvc.errors import InvalidInputError
from searchsvc.providers import EmbedderRegistry
from searchsvc.storage import vector_stores as rows
from searchsvc.storage.cursor_pages import Page
from searchsvc.storage.schema import Collection, VectorStore
from searchsvc.store import Store
from searchsvc.vector_stores.status import counts, file_states

DAY = 86_400


def create_store(store: Store, embedders: EmbedderRegistry, fields: dict[str, Any]) -> Collection:
    """A new collection (embedded with the configured default model) and its vector-store row."""
    name = f"vs_{secrets.token_hex(12)}"
    collection = store.ensure_collection(name, embedders.for_existing_or_new(None))
    with store.session() as session:
        rows.save_store(session, collection, **fields)
    return collection


def update_store(store: Store, name: str, fields: dict[str, Any]) -> None:
    collection = store.get_collection(name)
    with store.session() as session:
        rows.save_store(session, collection, **fields)


def describe(store: Store, name: str) -> dict[str, Any]:
    collection = store.get_collection(name)
    with store.session() as session:
        return store_json(session, collection, rows.store_row(session, collection))


def listed(store: Store, page: Page) -> tuple[list[dict[str, Any]], bool]:
    with store.session() as session:
        found, more = rows.stores(session, page)
        return [store_json(session, collection, row) for collection, row in found], more


def store_json(session: Any, collection: Collection, row: VectorStore | None) -> dict[str, Any]:
    """OpenAI's ``vector_store`` object; a collection made otherwise (the CLI) shows its own name and no files."""
    states = file_states(session, collection, rows.all_files(session, collection))
    created = int(collection.created_at.timestamp())
    last_active = row.last_active_at if row is not None else created
    expires_after = row.expires_after if row is not None else None
    expires_at = last_active + expires_after["days"] * DAY if expires_after else None
    tally = counts(states)
    status = "in_progress" if tally["in_progress"] else "completed"
    if expires_at is not None and expires_at <= time.time():
        status = "expired"
    return {
        "id": collection.name,
        "object": "vector_store",
        "created_at": created,
        "name": row.name if row is not None and row.name is not None else collection.name,
        "metadata": (row.store_metadata if row is not None else None) or {},
        "file_counts": tally,
        "status": status,
        "usage_bytes": sum(state.usage_bytes for state in states.values()),
        "last_active_at": last_active,
        "expires_after": expires_after,
        "expires_at": expires_at,
    }


def usable(store: Store, name: str) -> Collection:
    """The collection of a vector store that may be searched (not expired); marks it active."""
    collection = store.get_collection(name)
    with store.session() as session:
        row = rows.store_row(session, collection)
        if row is not None and row.expires_after:
            if row.last_active_at + row.expires_after["days"] * DAY <= time.time():
                raise InvalidInputError(f"vector store {name!r} has expired: create a new one").at("vector_store_id")
            rows.save_store(session, collection)  # searching keeps a store alive (anchor last_active_at)
    return collection
