"""PostgreSQL: each chunk's keyword length (its words: title, headings and text), so keyword search can rank by BM25
as SQLite's FTS5 does, instead of ts_rank. SQLite: nothing to do (FTS5 keeps its own statistics).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from importlib import import_module

from alembic import op

_KEYWORD_INDEX = import_module("searchsvc.migrations.versions.0003_keyword_index")

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# Every word counts, stopwords too (the 'simple' configuration keeps them): FTS5 measures lengths so.
LENGTH = "(SELECT coalesce(sum(array_length(positions, 1)), 0) FROM unnest(to_tsvector('simple', {words})))"
WORDS = (
    "coalesce((SELECT title FROM documents WHERE id = {row}.document_id), '') || ' ' || "
    "coalesce({row}.heading_path::text, '') || ' ' || {row}.text"
)

# 0003's function, which also measures the chunk.
POSTGRES_FUNCTION = _KEYWORD_INDEX.POSTGRES_FUNCTION.replace(
    "RETURN NEW;",
    "NEW.search_length := {length};\n  RETURN NEW;".format(length=LENGTH.format(words=WORDS.format(row="NEW"))),
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE chunks ADD COLUMN search_length integer")
    op.execute(POSTGRES_FUNCTION)
    op.execute(f"UPDATE chunks SET search_length = {LENGTH.format(words=WORDS.format(row='chunks'))}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_KEYWORD_INDEX.POSTGRES_FUNCTION)
    op.execute("ALTER TABLE chunks DROP COLUMN search_length")
