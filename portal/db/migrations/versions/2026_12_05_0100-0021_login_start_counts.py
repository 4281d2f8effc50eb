"""login_start_counts: the login-start limit shared by every instance (was in memory, per instance)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db.base

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_start_counts",
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("window_start", portal.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("starts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("client", name=op.f("pk_login_start_counts")),
    )
    op.create_index(
        op.f("ix_login_start_counts_window_start"),
        "login_start_counts",
        ["window_start"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_login_start_counts_window_start"), table_name="login_start_counts")
    op.drop_table("login_start_counts")
