"""Record each ingested folder or file by its resolved location, so two folders of one name never share keys.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=1024), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("location_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["collection_id"], ["collections.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("collection_id", "label", name="uq_ingest_sources_label"),
        sa.UniqueConstraint("collection_id", "location_hash", name="uq_ingest_sources_location"),
    )


def downgrade() -> None:
    op.drop_table("ingest_sources")
