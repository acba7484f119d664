"""Documents found by content within a collection: a file found under a new name is matched to the
document whose file is gone by its content fingerprint (renames and moves keep their vectors).

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_documents_collection_content", "documents", ["collection_id", "content_hash"])


def downgrade() -> None:
    op.drop_index("ix_documents_collection_content", table_name="documents")
