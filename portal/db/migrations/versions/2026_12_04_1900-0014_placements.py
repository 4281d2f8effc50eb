"""placements: the placement register (FR-B8)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 19:00:00

Placements and their immutable versions (portal/placements): the personnummer as a blind index
plus ciphertext, names and home/institution in an encrypted blob, legal basis, section and dates
in clear.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db.base

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "placements",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("jour_id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", portal.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("changed_at", portal.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("legal_basis", sa.String(length=10), nullable=False),
        sa.Column("legal_section", sa.String(length=20), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_placements_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["jour_id"], ["organisations.id"], name=op.f("fk_placements_jour_id_organisations")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_placements_organisation_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_placements")),
    )
    op.create_index(
        "ix_placements_org_created", "placements", ["organisation_id", "created_at"]
    )
    op.create_table(
        "placement_versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("placement_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", portal.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("legal_basis", sa.String(length=10), nullable=False),
        sa.Column("legal_section", sa.String(length=20), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("pnr_index", sa.String(length=64), nullable=False),
        sa.Column("pnr_enc", sa.Text(), nullable=False),
        sa.Column("content_enc", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_placement_versions_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["placement_id"],
            ["placements.id"],
            name=op.f("fk_placement_versions_placement_id_placements"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_placement_versions")),
        sa.UniqueConstraint(
            "placement_id", "version", name=op.f("uq_placement_versions_placement_id")
        ),
    )
    op.create_index(
        op.f("ix_placement_versions_pnr_index"), "placement_versions", ["pnr_index"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_placement_versions_pnr_index"), table_name="placement_versions")
    op.drop_table("placement_versions")
    op.drop_index("ix_placements_org_created", table_name="placements")
    op.drop_table("placements")
