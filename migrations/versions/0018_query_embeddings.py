"""Query vectors of API models kept in SQL, so a repeated query is not paid again by any process.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "query_embeddings",
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("text_hash", sa.String(length=64), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("model", "text_hash"),
    )
    op.create_index("ix_query_embeddings_created", "query_embeddings", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_query_embeddings_created", table_name="query_embeddings")
    op.drop_table("query_embeddings")
