"""Register the sources of documents ingested before 0005, so a new folder of the same name cannot claim
(and prune) them: each (collection, source) gets its label and the location its documents came from.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _location(source: str, key: str, path: str | None) -> str | None:
    """Where a document's source was: ``api:`` for upserts, the folder for files, the JSONL file for records."""
    if path is None:
        return "api:" if source == "api" else None
    relative = key[len(source) + 1 :] if key.startswith(source + "/") else None
    if relative and path.endswith("/" + relative):
        return path[: -len(relative) - 1]
    return path  # a JSONL record: its path is the file


def upgrade() -> None:
    conn = op.get_bind()
    firsts = conn.execute(
        sa.text("SELECT collection_id, source, MIN(id) FROM documents GROUP BY collection_id, source")
    ).all()
    known = {(c, label) for c, label in conn.execute(sa.text("SELECT collection_id, label FROM ingest_sources"))}
    hashes = {(c, h) for c, h in conn.execute(sa.text("SELECT collection_id, location_hash FROM ingest_sources"))}
    table = sa.table(
        "ingest_sources",
        sa.column("collection_id"),
        sa.column("label"),
        sa.column("location"),
        sa.column("location_hash"),
        sa.column("created_at"),
    )
    rows = []
    for collection_id, source, first_id in firsts:
        key, path = conn.execute(sa.text("SELECT key, path FROM documents WHERE id = :id"), {"id": first_id}).one()
        location = _location(source, key, path)
        if location is None or (collection_id, source) in known:
            continue
        digest = hashlib.sha256(location.encode("utf-8", "surrogatepass")).hexdigest()
        if (collection_id, digest) in hashes:
            continue
        hashes.add((collection_id, digest))
        rows.append(
            {
                "collection_id": collection_id,
                "label": source,
                "location": location,
                "location_hash": digest,
                "created_at": datetime.now(UTC),
            }
        )
    if rows:
        op.bulk_insert(table, rows)


def downgrade() -> None:
    pass  # the rows are plain data; 0005's downgrade drops the table
