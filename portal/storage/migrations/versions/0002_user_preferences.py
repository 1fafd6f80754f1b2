"""Per-user preferences of each feature (a widget's sort, filter, feed token).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_preferences",
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("namespace", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subject", "namespace", "name", name="pk_user_preferences"),
    )
    op.create_index("ix_user_preferences_namespace_name", "user_preferences", ["namespace", "name"])


def downgrade() -> None:
    op.drop_index("ix_user_preferences_namespace_name", table_name="user_preferences")
    op.drop_table("user_preferences")
