"""The registry of pgvector tables (one per collection, made when its dimension is known), and the
``vector`` extension where the server has it and the user may create it.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vector_indexes",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("table_name", sa.String(length=63), nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("database", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("dimension", sa.Integer(), nullable=False),
        sa.Column("index_type", sa.String(length=32), nullable=False),
        sa.Column("element_type", sa.String(length=16), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
        sa.UniqueConstraint("table_name", name="uq_vector_indexes_table_name"),
    )
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    available = bind.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")).scalar()
    if available:
        try:
            with bind.begin_nested():  # not permitted (no superuser, no trusted extension): FAISS still works
                bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS vector"))
        except sa.exc.DBAPIError:
            pass


def downgrade() -> None:
    bind = op.get_bind()
    tables = bind.execute(sa.text("SELECT table_name FROM vector_indexes")).scalars().all()
    for table in tables:
        op.execute(f"DROP TABLE IF EXISTS {table}")
    op.drop_table("vector_indexes")
