"""Police requests: the one-time submission key (form field, API Idempotency-Key), unique per
creating user, so a form sent twice or an API call retried makes one request

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("police_requests", sa.Column("submission_key", sa.String(64), nullable=True))
    op.create_index(
        "uq_police_requests_submission",
        "police_requests",
        ["created_by", "submission_key"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_police_requests_submission", table_name="police_requests")
    with op.batch_alter_table("police_requests") as batch:
        batch.drop_column("submission_key")
