"""stats

Revision ID: 0004_stats
Revises: 0003_upgrade_checks
Create Date: 2026-11-27 19:53:55.837781
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_stats"
down_revision: str | None = "0003_upgrade_checks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "stats_builds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("build_id", sa.Integer(), nullable=False),
        sa.Column("image_key", sa.String(length=64), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("error_kind", sa.String(length=64), nullable=True),
        sa.Column("distro", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("profile", sa.String(length=128), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("manifest_hash", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stats_builds")),
        sa.UniqueConstraint("build_id", "finished_at", name=op.f("uq_stats_builds_build_id")),
    )
    with op.batch_alter_table("stats_builds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stats_builds_build_id"), ["build_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_stats_builds_finished_at"), ["finished_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_stats_builds_manifest_hash"), ["manifest_hash"], unique=False)

    op.create_table(
        "stats_daily",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stats_daily")),
        sa.UniqueConstraint("day", "kind", "version", "target", "name", name=op.f("uq_stats_daily_day")),
    )
    with op.batch_alter_table("stats_daily", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stats_daily_day"), ["day"], unique=False)
        batch_op.create_index(batch_op.f("ix_stats_daily_kind"), ["kind"], unique=False)

    op.create_table(
        "stats_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("api", sa.String(length=32), nullable=False),
        sa.Column("client", sa.String(length=256), nullable=False),
        sa.Column("distro", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("profile", sa.String(length=128), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("has_defaults", sa.Boolean(), nullable=False),
        sa.Column("cache_hit", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stats_requests")),
    )
    with op.batch_alter_table("stats_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stats_requests_at"), ["at"], unique=False)
        batch_op.create_index("ix_stats_requests_at_version", ["at", "version"], unique=False)
        batch_op.create_index(batch_op.f("ix_stats_requests_target"), ["target"], unique=False)

    op.create_table(
        "stats_requested_packages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["stats_requests.id"],
            name=op.f("fk_stats_requested_packages_request_id_stats_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stats_requested_packages")),
    )
    with op.batch_alter_table("stats_requested_packages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stats_requested_packages_name"), ["name"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_stats_requested_packages_request_id"), ["request_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("stats_requested_packages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stats_requested_packages_request_id"))
        batch_op.drop_index(batch_op.f("ix_stats_requested_packages_name"))

    op.drop_table("stats_requested_packages")
    with op.batch_alter_table("stats_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stats_requests_target"))
        batch_op.drop_index("ix_stats_requests_at_version")
        batch_op.drop_index(batch_op.f("ix_stats_requests_at"))

    op.drop_table("stats_requests")
    with op.batch_alter_table("stats_daily", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stats_daily_kind"))
        batch_op.drop_index(batch_op.f("ix_stats_daily_day"))

    op.drop_table("stats_daily")
    with op.batch_alter_table("stats_builds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stats_builds_manifest_hash"))
        batch_op.drop_index(batch_op.f("ix_stats_builds_finished_at"))
        batch_op.drop_index(batch_op.f("ix_stats_builds_build_id"))

    op.drop_table("stats_builds")
