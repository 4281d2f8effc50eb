"""Index for the retention page's keyset-paged list of an organisation's legal holds, newest
first by (placed_at, id)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05 04:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_legal_holds_org_placed",
        "legal_holds",
        ["organisation_id", "placed_at", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_legal_holds_org_placed", table_name="legal_holds")
