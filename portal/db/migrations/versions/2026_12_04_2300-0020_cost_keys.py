"""cost_keys: each jour's own cost-allocation key (population percent, annual cost, period)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db.base

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cost_keys",
        sa.Column("jour_id", sa.Uuid(), nullable=False),
        sa.Column("population_percent", sa.Integer(), nullable=False),
        sa.Column("annual_sek", sa.Integer(), nullable=False),
        sa.Column("period_kind", sa.String(length=10), nullable=False),
        sa.Column("updated_at", portal.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["jour_id"], ["organisations.id"], name=op.f("fk_cost_keys_jour_id_organisations")
        ),
        sa.ForeignKeyConstraint(
            ["updated_by"], ["users.id"], name=op.f("fk_cost_keys_updated_by_users")
        ),
        sa.PrimaryKeyConstraint("jour_id", name=op.f("pk_cost_keys")),
    )


def downgrade() -> None:
    op.drop_table("cost_keys")
