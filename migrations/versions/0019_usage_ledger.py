"""The token ledger: every embedding and chat call's model, tokens, requests, cost estimate, collection
and purpose.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

LEDGER_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # rowid on SQLite


def upgrade() -> None:
    op.create_table(
        "usage_ledger",
        sa.Column("id", LEDGER_ID, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("collection", sa.String(length=128), nullable=True),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Double(), nullable=True),
        sa.Column("estimated", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_usage_ledger_at", "usage_ledger", ["at"])


def downgrade() -> None:
    op.drop_index("ix_usage_ledger_at", table_name="usage_ledger")
    op.drop_table("usage_ledger")
