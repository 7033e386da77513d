"""Helpers of the catalog tests: settings for the demo tree, migrated databases, private tree copies."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from sysup.catalog.sync import SyncReport, sync_distro
from sysup.config import DistroSettings
from sysup.database import create_engine_for, session_factory
from sysup.database.migrate import upgrade_database
from sysup.upstream.fetch import Fetcher
from tests.support.upstream import DemoTree


def distro_for(tree: DemoTree, url: str | None = None, **overrides: object) -> DistroSettings:
    """Settings of the ``openwrt`` distribution served by the demo tree (or by ``url``)."""
    info, served = tree
    return DistroSettings(upstream_url=url or served, public_keys=[info.public_key_text], **overrides)


def migrated(url: str) -> sessionmaker[Session]:
    upgrade_database(url)
    return session_factory(create_engine_for(url))


def run_sync(factory: sessionmaker[Session], distro: DistroSettings) -> SyncReport:
    with Fetcher(timeout=10, retries=0) as fetcher:
        return sync_distro(factory, "openwrt", distro, fetcher)


def copy_tree(source: Path, dest: Path) -> Path:
    """A private copy of the shared tree (hard links: cheap; edit files by replacing, never in place)."""
    shutil.copytree(source, dest, copy_function=os.link)
    return dest


def replace_file(path: Path, data: bytes) -> None:
    """Replace ``path`` with new bytes without touching the (hard-linked) original."""
    path.unlink()
    path.write_bytes(data)
