"""upgrade checks

Revision ID: 0003_upgrade_checks
Revises: 0002_builds
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_upgrade_checks"
down_revision: str | None = "0002_builds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "upgrade_checks",
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("distro", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("answer", sa.JSON(), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("request_hash", name=op.f("pk_upgrade_checks")),
    )
    op.create_index(op.f("ix_upgrade_checks_checked_at"), "upgrade_checks", ["checked_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_upgrade_checks_checked_at"), table_name="upgrade_checks")
    op.drop_table("upgrade_checks")
