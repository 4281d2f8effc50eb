"""form_drafts: half-written forms kept across a session timeout (encrypted, expiring)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db.base

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "form_drafts",
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("form_key", sa.String(60), primary_key=True),
        sa.Column("data_enc", sa.Text(), nullable=False),
        sa.Column("saved_at", portal.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", portal.db.base.UTCDateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_form_drafts_expires_at", "form_drafts", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_form_drafts_expires_at", table_name="form_drafts")
    op.drop_table("form_drafts")
