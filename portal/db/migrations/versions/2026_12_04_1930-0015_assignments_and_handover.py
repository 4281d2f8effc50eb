"""assignments and handover notes

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 19:30:00

Tables of portal/assignments: assignments (uppdrag) from a municipality to its jour with their
outcome, the jour's shift handover notes and the incoming staff's receipts of them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db.base

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = portal.db.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "assignments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("jour_id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("due_at", UTC, nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("content_enc", sa.Text(), nullable=False),
        sa.Column("pnr_index", sa.String(length=64), nullable=True),
        sa.Column("pnr_enc", sa.Text(), nullable=True),
        sa.Column("accepted_by", sa.Uuid(), nullable=True),
        sa.Column("accepted_at", UTC, nullable=True),
        sa.Column("outcome_by", sa.Uuid(), nullable=True),
        sa.Column("outcome_at", UTC, nullable=True),
        sa.Column("outcome_enc", sa.Text(), nullable=True),
        sa.Column("withdrawn_by", sa.Uuid(), nullable=True),
        sa.Column("withdrawn_at", UTC, nullable=True),
        sa.Column("withdraw_reason_enc", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["accepted_by"], ["users.id"], name=op.f("fk_assignments_accepted_by_users")),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_assignments_created_by_users")),
        sa.ForeignKeyConstraint(["jour_id"], ["organisations.id"], name=op.f("fk_assignments_jour_id_organisations")),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"], name=op.f("fk_assignments_organisation_id_organisations")),
        sa.ForeignKeyConstraint(["outcome_by"], ["users.id"], name=op.f("fk_assignments_outcome_by_users")),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_assignments_unit_id_units")),
        sa.ForeignKeyConstraint(["withdrawn_by"], ["users.id"], name=op.f("fk_assignments_withdrawn_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assignments")),
    )  # fmt: skip
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.create_index("ix_assignments_jour_status_due", ["jour_id", "status", "due_at"], unique=False)
        batch_op.create_index("ix_assignments_org_created", ["organisation_id", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_assignments_pnr_index"), ["pnr_index"], unique=False)

    op.create_table(
        "handover_notes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("jour_id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("shift_start", UTC, nullable=False),
        sa.Column("body_enc", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_handover_notes_created_by_users")),
        sa.ForeignKeyConstraint(["jour_id"], ["organisations.id"], name=op.f("fk_handover_notes_jour_id_organisations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handover_notes")),
    )  # fmt: skip
    with op.batch_alter_table("handover_notes", schema=None) as batch_op:
        batch_op.create_index("ix_handover_notes_jour_created", ["jour_id", "created_at"], unique=False)

    op.create_table(
        "handover_reads",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("note_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["note_id"], ["handover_notes.id"], name=op.f("fk_handover_reads_note_id_handover_notes")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_handover_reads_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handover_reads")),
        sa.UniqueConstraint("note_id", "user_id", name=op.f("uq_handover_reads_note_id")),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("handover_reads")
    with op.batch_alter_table("handover_notes", schema=None) as batch_op:
        batch_op.drop_index("ix_handover_notes_jour_created")
    op.drop_table("handover_notes")
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assignments_pnr_index"))
        batch_op.drop_index("ix_assignments_org_created")
        batch_op.drop_index("ix_assignments_jour_status_due")
    op.drop_table("assignments")
