"""Catalog tables: branches, versions, targets, profiles, supported devices, package feeds, upstream files.

Revision ID: 0001_catalog
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_catalog"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _indexes(table: str, *columns: str) -> None:
    for column in columns:
        op.create_index(op.f(f"ix_{table}_{column}"), table, [column])


def upgrade() -> None:
    op.create_table(
        "branches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("distro", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("path", sa.String(length=255), nullable=False),
        sa.Column("snapshot", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("branch_off_rev", sa.Integer(), nullable=True),
        sa.Column("present", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_branches")),
        sa.UniqueConstraint("distro", "name", name=op.f("uq_branches_distro")),
    )
    _indexes("branches", "distro", "name")

    op.create_table(
        "versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("distro", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("branch", sa.String(length=64), nullable=False),
        sa.Column("path", sa.String(length=255), nullable=False),
        sa.Column("snapshot", sa.Boolean(), nullable=False),
        sa.Column("package_manager", sa.String(length=8), nullable=False),
        sa.Column("present", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_versions")),
        sa.UniqueConstraint("distro", "version", name=op.f("uq_versions_distro")),
    )
    _indexes("versions", "branch", "distro", "present", "version")

    op.create_table(
        "targets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("distro", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("arch_packages", sa.String(length=128), nullable=False),
        sa.Column("version_code", sa.String(length=128), nullable=False),
        sa.Column("source_date_epoch", sa.BigInteger(), nullable=False),
        sa.Column("default_packages", sa.JSON(), nullable=False),
        sa.Column("linux_kernel", sa.JSON(), nullable=True),
        sa.Column("profiles_meta", sa.JSON(), nullable=False),
        sa.Column("profiles_sha256", sa.String(length=64), nullable=False),
        sa.Column("package_manager", sa.String(length=8), nullable=False),
        sa.Column("present", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_targets")),
        sa.UniqueConstraint("distro", "version", "target", name=op.f("uq_targets_distro")),
    )
    _indexes("targets", "arch_packages", "distro", "present", "target", "version")

    op.create_table(
        "profiles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("titles", sa.JSON(), nullable=False),
        sa.Column("supported_devices", sa.JSON(), nullable=False),
        sa.Column("device_packages", sa.JSON(), nullable=False),
        sa.Column("images", sa.JSON(), nullable=False),
        sa.Column("image_prefix", sa.String(length=255), nullable=False),
        sa.Column("file_size_limits", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["target_id"], ["targets.id"], name=op.f("fk_profiles_target_id_targets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profiles")),
        sa.UniqueConstraint("target_id", "name", name=op.f("uq_profiles_target_id")),
    )
    _indexes("profiles", "name", "target_id")

    op.create_table(
        "supported_devices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("device", sa.String(length=255), nullable=False),
        sa.Column("device_key", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["profiles.id"],
            name=op.f("fk_supported_devices_profile_id_profiles"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["target_id"],
            ["targets.id"],
            name=op.f("fk_supported_devices_target_id_targets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supported_devices")),
    )
    _indexes("supported_devices", "device_key", "profile_id", "target_id")

    op.create_table(
        "package_feeds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("distro", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("feed", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("index_sha256", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.String(length=8), nullable=False),
        sa.Column("package_count", sa.Integer(), nullable=False),
        sa.Column("records", sa.LargeBinary(), nullable=False),
        sa.Column("present", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_package_feeds")),
        sa.UniqueConstraint(
            "distro", "version", "scope", "key", "feed", name=op.f("uq_package_feeds_distro")
        ),
    )
    _indexes("package_feeds", "distro", "key", "present", "scope", "version")

    op.create_table(
        "upstream_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=1024), nullable=False),
        sa.Column("etag", sa.String(length=255), nullable=True),
        sa.Column("last_modified", sa.String(length=64), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_upstream_files")),
    )
    op.create_index(op.f("ix_upstream_files_url"), "upstream_files", ["url"], unique=True)


def downgrade() -> None:
    for table in (
        "supported_devices",
        "profiles",
        "package_feeds",
        "upstream_files",
        "targets",
        "versions",
        "branches",
    ):
        op.drop_table(table)
