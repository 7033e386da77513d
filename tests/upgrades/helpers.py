"""A database holding the catalog of the demo upstream, for the upgrade tests and their API tests."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from sysup.config import DistroSettings
from tests.support.upstream import DemoTree


def synced_sessions(url: str, tree: DemoTree) -> tuple[sessionmaker[Session], DistroSettings]:
    """Migrate ``url``, create the tables that have no migration yet (``upgrade_checks``, and whatever else
    is registered on ``Base.metadata`` when this runs), and sync the demo tree into it."""
    import sysup.upgrades.models  # noqa: F401  (registers upgrade_checks on Base.metadata)
    from sysup.catalog.sync import sync_distro
    from sysup.database import Base, create_engine_for, session_factory
    from sysup.database.migrate import upgrade_database
    from sysup.upstream.fetch import Fetcher

    info, served = tree
    upgrade_database(url)
    engine = create_engine_for(url)
    Base.metadata.create_all(engine)
    sessions = session_factory(engine)
    distro = DistroSettings(upstream_url=served, public_keys=[info.public_key_text])
    with Fetcher(timeout=10, retries=0) as fetcher:
        report = sync_distro(sessions, "openwrt", distro, fetcher)
    assert report.ok, report.errors
    return sessions, distro
