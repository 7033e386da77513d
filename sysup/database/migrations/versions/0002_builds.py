"""builds and build requests

Revision ID: 0002_builds
Revises: 0001_catalog
Create Date: 2026-11-27 19:40:27.223351
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_builds"
down_revision: str | None = "0001_catalog"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "build_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("image_key", sa.String(length=64), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("client", sa.String(length=256), nullable=False),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("distro", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("profile", sa.String(length=128), nullable=False),
        sa.Column("has_defaults", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_build_requests")),
        sa.UniqueConstraint("request_hash", name=op.f("uq_build_requests_request_hash")),
    )
    with op.batch_alter_table("build_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_build_requests_enqueued_at"), ["enqueued_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_build_requests_image_key"), ["image_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_build_requests_target"), ["target"], unique=False)
        batch_op.create_index(batch_op.f("ix_build_requests_version"), ["version"], unique=False)

    op.create_table(
        "builds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_key", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("job", sa.JSON(), nullable=False),
        sa.Column("client", sa.String(length=256), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("error_kind", sa.String(length=64), nullable=True),
        sa.Column("stdout", sa.Text(), nullable=False),
        sa.Column("stderr", sa.Text(), nullable=False),
        sa.Column("bin_dir", sa.String(length=160), nullable=True),
        sa.Column("store_kind", sa.String(length=16), nullable=False),
        sa.Column("result_ttl", sa.Integer(), nullable=False),
        sa.Column("failure_ttl", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_builds")),
        sa.UniqueConstraint("image_key", name=op.f("uq_builds_image_key")),
    )
    with op.batch_alter_table("builds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_builds_client"), ["client"], unique=False)
        batch_op.create_index(batch_op.f("ix_builds_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_builds_lease_expires_at"), ["lease_expires_at"], unique=False)
        batch_op.create_index("ix_builds_status_queued", ["status", "queued_at"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("builds", schema=None) as batch_op:
        batch_op.drop_index("ix_builds_status_queued")
        batch_op.drop_index(batch_op.f("ix_builds_lease_expires_at"))
        batch_op.drop_index(batch_op.f("ix_builds_expires_at"))
        batch_op.drop_index(batch_op.f("ix_builds_client"))

    op.drop_table("builds")
    with op.batch_alter_table("build_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_build_requests_version"))
        batch_op.drop_index(batch_op.f("ix_build_requests_target"))
        batch_op.drop_index(batch_op.f("ix_build_requests_image_key"))
        batch_op.drop_index(batch_op.f("ix_build_requests_enqueued_at"))

    op.drop_table("build_requests")
