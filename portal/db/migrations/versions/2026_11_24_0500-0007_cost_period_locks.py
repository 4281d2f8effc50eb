"""cost period locks: the frozen invoice basis of a closed period

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db.base

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cost_period_locks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("jour_id", sa.Uuid(), nullable=False),
        sa.Column("period_key", sa.String(length=10), nullable=False),
        sa.Column("locked_at", portal.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("locked_by", sa.Uuid(), nullable=False),
        sa.Column("population_percent", sa.Integer(), nullable=False),
        sa.Column("annual_sek", sa.Integer(), nullable=False),
        sa.Column("basis", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["jour_id"], ["organisations.id"], name=op.f("fk_cost_period_locks_jour_id_organisations")),
        sa.ForeignKeyConstraint(["locked_by"], ["users.id"], name=op.f("fk_cost_period_locks_locked_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cost_period_locks")),
        sa.UniqueConstraint("jour_id", "period_key", name=op.f("uq_cost_period_locks_jour_id")),
    )


def downgrade() -> None:
    op.drop_table("cost_period_locks")
