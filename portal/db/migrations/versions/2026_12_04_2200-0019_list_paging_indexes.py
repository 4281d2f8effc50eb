"""Indexes for keyset paging: decisions by oral decision, reports by occurrence, the jour's
advisories and assignments by creation, placements by the latest change (each ending in id,
the tie-breaker)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 22:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_decisions_jour_oral", "decisions", ["jour_id", "oral_decision_at", "id"]),
    ("ix_decisions_municipality_oral", "decisions", ["municipality_id", "oral_decision_at", "id"]),
    ("ix_reports_municipality_occurred", "reports", ["municipality_id", "occurred_at", "id"]),
    ("ix_reports_jour_occurred", "reports", ["jour_id", "occurred_at", "id"]),
    ("ix_advisories_jour_created", "advisories", ["jour_id", "created_at", "id"]),
    ("ix_assignments_jour_created", "assignments", ["jour_id", "created_at", "id"]),
    ("ix_placements_org_changed", "placements", ["organisation_id", "changed_at", "id"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
