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
    for table, column, _ in reversed(COLUMNS):
        op.drop_column(table, column)  # in place (SQLite 3.35+)
