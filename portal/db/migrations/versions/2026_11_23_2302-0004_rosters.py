"""rosters: on-call roster versions, entries and acknowledgements

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 23:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db.base

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "roster_versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("municipality_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("created_at", portal.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_roster_versions_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["municipality_id"],
            ["organisations.id"],
            name=op.f("fk_roster_versions_municipality_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roster_versions")),
        sa.UniqueConstraint(
            "municipality_id", "number", name=op.f("uq_roster_versions_municipality_id")
        ),
    )
    with op.batch_alter_table("roster_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_roster_versions_municipality_id"), ["municipality_id"], unique=False
        )
    op.create_table(
        "roster_entries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("function", sa.String(length=30), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("valid_from", portal.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("valid_to", portal.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("phone_enc", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_roster_entries_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["roster_versions.id"],
            name=op.f("fk_roster_entries_version_id_roster_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roster_entries")),
    )
    with op.batch_alter_table("roster_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_roster_entries_user_id"), ["user_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_roster_entries_version_id"), ["version_id"], unique=False
        )
    op.create_table(
        "roster_acks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("jour_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("at", portal.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["jour_id"], ["organisations.id"], name=op.f("fk_roster_acks_jour_id_organisations")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_roster_acks_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["roster_versions.id"],
            name=op.f("fk_roster_acks_version_id_roster_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roster_acks")),
        sa.UniqueConstraint("version_id", "jour_id", name=op.f("uq_roster_acks_version_id")),
    )


def downgrade() -> None:
    op.drop_table("roster_acks")
    with op.batch_alter_table("roster_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_roster_entries_version_id"))
        batch_op.drop_index(batch_op.f("ix_roster_entries_user_id"))
    op.drop_table("roster_entries")
    with op.batch_alter_table("roster_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_roster_versions_municipality_id"))
    op.drop_table("roster_versions")
