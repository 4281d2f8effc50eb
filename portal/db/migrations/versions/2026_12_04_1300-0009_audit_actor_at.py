"""audit entries indexed by actor and time (lookup throttling)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 13:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_audit_entries_actor_at", "audit_entries", ["actor_user_id", "at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_audit_entries_actor_at", table_name="audit_entries")
