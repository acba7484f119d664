"""Embedding-model switches: a collection's vector generation, and the ``model_migrations`` that build and
swap them.

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ADD COLUMN in place (never a copied table: on SQLite a batch copy would drop the table others cascade from)
    op.add_column("collections", sa.Column("vector_generation", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "model_migrations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("collection_id", sa.Integer(), sa.ForeignKey("collections.id", ondelete="CASCADE"), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("from_generation", sa.Integer(), nullable=False),
        sa.Column("from_provider", sa.String(length=32), nullable=False),
        sa.Column("from_model", sa.String(length=256), nullable=False),
        sa.Column("from_dimension", sa.Integer(), nullable=False),
        sa.Column("to_generation", sa.Integer(), nullable=False),
        sa.Column("to_provider", sa.String(length=32), nullable=False),
        sa.Column("to_model", sa.String(length=256), nullable=False),
        sa.Column("to_dimension", sa.Integer(), nullable=True),
        sa.Column("chunks_total", sa.Integer(), nullable=False),
        sa.Column("texts_embedded", sa.Integer(), nullable=False),
        sa.Column("texts_cached", sa.Integer(), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("swapped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_model_migrations_collection", "model_migrations", ["collection_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_model_migrations_collection", table_name="model_migrations")
    op.drop_table("model_migrations")
    op.drop_column("collections", "vector_generation")  # in place (SQLite 3.35+): no copy, no cascade
