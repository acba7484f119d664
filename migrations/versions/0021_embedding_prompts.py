"""Query and passage prompts per collection (``searchsvc.providers.prompts``): what a collection's model was
told to tell a query from a passage, kept so every later query matches; NULL is none, as before. And the
collection's calibrated relevance floor (``searchsvc.relevance_floor``).

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

COLUMNS = (
    ("collections", "embedding_prompts", sa.Text()),
    ("model_migrations", "from_prompts", sa.Text()),
    ("model_migrations", "to_prompts", sa.Text()),
    ("collections", "relevance_floor", sa.Double()),
    ("collections", "floor_chunks", sa.Integer()),
    ("collections", "floor_vectors_key", sa.String(length=300)),
)


def upgrade() -> None:
    for table, column, kind in COLUMNS:  # ADD COLUMN in place: a batch copy on SQLite would cascade
        op.add_column(table, sa.Column(column, kind, nullable=True))


def downgrade() -> None:
    # Vectors embedded with prompts are stored under "model#hash" keys, which 0020's code never looks up: its
    # indexes would be rebuilt empty. Refuse rather than strand them.
    prompted = op.get_bind().execute(
        sa.text("SELECT name FROM collections WHERE embedding_prompts IS NOT NULL AND embedding_prompts <> '{}'")
    )
    names = [row[0] for row in prompted]
    if names:
        raise RuntimeError(
            f"cannot downgrade below 0021: collections {', '.join(names)} were embedded with query/passage prompts, "
            "which older versions cannot read; delete them (or switch them to a model without prompts) first"
        )
    for table, column, _ in reversed(COLUMNS):
        op.drop_column(table, column)  # in place (SQLite 3.35+)
