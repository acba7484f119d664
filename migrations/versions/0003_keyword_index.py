"""Add the keyword index kept in step with chunks: SQLite FTS5 (bm25) or PostgreSQL tsvector + GIN.

On SQLite an FTS5 table holds each chunk's document title and heading path (column ``header``) and
its text (``body``), maintained by triggers on ``chunks``. On PostgreSQL a ``search_vector`` column
on ``chunks`` (title weighted A, text D) is filled by a trigger and indexed with GIN. Existing chunks
are indexed by the migration itself.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SQLITE_HEADER = (
    "coalesce((SELECT title FROM documents WHERE documents.id = {row}.document_id), '') || ' ' || "
    "coalesce({row}.heading_path, '')"
)

POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION chunks_search_vector() RETURNS trigger AS $$
BEGIN
  NEW.search_vector :=
    setweight(to_tsvector('english', coalesce((SELECT title FROM documents WHERE id = NEW.document_id), '')), 'A')
    || setweight(to_tsvector('english', coalesce(NEW.heading_path::text, '')), 'B')
    || setweight(to_tsvector('english', NEW.text), 'D');
  RETURN NEW;
END
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _upgrade_postgres()
    else:
        _upgrade_sqlite()


def _upgrade_sqlite() -> None:
    op.execute("CREATE VIRTUAL TABLE chunks_fts USING fts5(header, body, tokenize = 'porter unicode61')")
    new_header = SQLITE_HEADER.format(row="new")
    op.execute(
        "CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN "
        f"INSERT INTO chunks_fts(rowid, header, body) VALUES (new.id, {new_header}, new.text); END"
    )
    op.execute(
        "CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN DELETE FROM chunks_fts WHERE rowid = old.id; END"
    )
    op.execute(
        "CREATE TRIGGER chunks_fts_update AFTER UPDATE OF text, heading_path ON chunks BEGIN "
        "DELETE FROM chunks_fts WHERE rowid = old.id; "
        f"INSERT INTO chunks_fts(rowid, header, body) VALUES (new.id, {new_header}, new.text); END"
    )
    header = SQLITE_HEADER.format(row="chunks")
    op.execute(f"INSERT INTO chunks_fts(rowid, header, body) SELECT id, {header}, text FROM chunks")


def _upgrade_postgres() -> None:
    op.execute("ALTER TABLE chunks ADD COLUMN search_vector tsvector")
    op.execute(POSTGRES_FUNCTION)
    op.execute(
        "CREATE TRIGGER chunks_search_vector_trigger BEFORE INSERT OR UPDATE OF text, heading_path ON chunks "
        "FOR EACH ROW EXECUTE FUNCTION chunks_search_vector()"
    )
    op.execute("UPDATE chunks SET text = text")  # fills search_vector for existing rows through the trigger
    op.execute("CREATE INDEX ix_chunks_search_vector ON chunks USING GIN (search_vector)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_chunks_search_vector")
        op.execute("DROP TRIGGER IF EXISTS chunks_search_vector_trigger ON chunks")
        op.execute("DROP FUNCTION IF EXISTS chunks_search_vector()")
        op.execute("ALTER TABLE chunks DROP COLUMN search_vector")
        return
    for trigger in ("chunks_fts_insert", "chunks_fts_delete", "chunks_fts_update"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TABLE IF EXISTS chunks_fts")
