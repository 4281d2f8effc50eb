"""name_tokens: blind index of normalised name tokens for the lookup by name

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 18:30:00

Existing records get their tokens from `jourpost lookup reindex-names` (a migration has no
keys to decrypt the names with).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "name_tokens",
        sa.Column("owner_type", sa.String(20), primary_key=True),
        sa.Column("owner_id", sa.Uuid(), primary_key=True),
        sa.Column("token_index", sa.String(64), primary_key=True),
    )
    op.create_index("ix_name_tokens_token_index", "name_tokens", ["token_index"])


def downgrade() -> None:
    op.drop_index("ix_name_tokens_token_index", table_name="name_tokens")
    op.drop_table("name_tokens")
