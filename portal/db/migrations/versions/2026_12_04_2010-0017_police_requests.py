"""police_requests: requests for police assistance and the delegation matrix

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 20:10:00

Requests for police assistance (handräckning, portal/police) with their life events, and the
per-municipality delegation matrix (FR-A5; a municipality without rows has the defaults).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db.base

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = portal.db.base.UTCDateTime(timezone=True)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    ref = target.split(".")[0]
    return sa.ForeignKeyConstraint([column], [target], name=op.f(f"fk_{table}_{column}_{ref}"))


def upgrade() -> None:
    op.create_table(
        "police_requests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("jour_id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("act", sa.String(length=10), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("stat_code", sa.String(length=30), nullable=False),
        sa.Column("legal_check", sa.String(length=20), nullable=False),
        sa.Column("placement_id", sa.Uuid(), nullable=True),
        sa.Column("decided_by", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("status_at", UTC, nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("pnr_index", sa.String(length=64), nullable=False),
        sa.Column("pnr_enc", sa.Text(), nullable=False),
        sa.Column("content_enc", sa.Text(), nullable=False),
        sa.Column("signed_by", sa.Uuid(), nullable=True),
        sa.Column("signed_at", UTC, nullable=True),
        sa.Column("signed_object_id", sa.String(length=100), nullable=True),
        sa.Column("signed_sha256", sa.String(length=64), nullable=True),
        sa.Column("signed_size", sa.Integer(), nullable=True),
        sa.Column("signed_kek_id", sa.String(length=40), nullable=True),
        sa.Column("signed_wrapped_key", sa.LargeBinary(), nullable=True),
        _fk("police_requests", "organisation_id", "organisations.id"),
        _fk("police_requests", "jour_id", "organisations.id"),
        _fk("police_requests", "created_by", "users.id"),
        _fk("police_requests", "placement_id", "placements.id"),
        _fk("police_requests", "signed_by", "users.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_police_requests")),
    )
    op.create_index(
        "ix_police_requests_jour_created", "police_requests", ["jour_id", "created_at"]
    )
    op.create_index(
        op.f("ix_police_requests_organisation_id"), "police_requests", ["organisation_id"]
    )
    op.create_index(op.f("ix_police_requests_pnr_index"), "police_requests", ["pnr_index"])
    op.create_table(
        "police_request_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("by", sa.Uuid(), nullable=False),
        sa.Column("note_enc", sa.Text(), nullable=True),
        _fk("police_request_events", "request_id", "police_requests.id"),
        _fk("police_request_events", "by", "users.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_police_request_events")),
    )
    op.create_index(
        "ix_police_request_events_request", "police_request_events", ["request_id", "at"]
    )
    op.create_table(
        "delegation_rules",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("matter", sa.String(length=30), nullable=False),
        sa.Column("decided_by", sa.String(length=10), nullable=False),
        sa.Column("changed_by", sa.Uuid(), nullable=True),
        sa.Column("changed_at", UTC, nullable=False),
        _fk("delegation_rules", "organisation_id", "organisations.id"),
        _fk("delegation_rules", "changed_by", "users.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delegation_rules")),
        sa.UniqueConstraint(
            "organisation_id", "matter", name=op.f("uq_delegation_rules_organisation_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("delegation_rules")
    op.drop_index("ix_police_request_events_request", table_name="police_request_events")
    op.drop_table("police_request_events")
    op.drop_index(op.f("ix_police_requests_pnr_index"), table_name="police_requests")
    op.drop_index(op.f("ix_police_requests_organisation_id"), table_name="police_requests")
    op.drop_index("ix_police_requests_jour_created", table_name="police_requests")
    op.drop_table("police_requests")
