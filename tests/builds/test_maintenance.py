"""The periodic upkeep: catalog refresh from upstream, and pruning of old rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import update

from sysup.builds.maintenance import housekeeping, refresh_catalog
from sysup.catalog.queries import Catalog
from sysup.config import DistroSettings, Settings
from sysup.database import create_engine_for, session_factory
from sysup.database.migrate import upgrade_database
from sysup.upgrades.models import UpgradeCheckRecord
from sysup.upgrades.request import UpgradeCheckRequest
from sysup.upgrades.store import load_check, save_check
from tests.support.upstream import DemoTree


def _settings(tmp_path: Path, distro: DistroSettings) -> Settings:
    url = f"sqlite:///{tmp_path / 'sysup.db'}"
    upgrade_database(url)
    return Settings(data_dir=tmp_path, database_url=url, distros={"openwrt": distro})


def test_refresh_fills_the_catalog(tmp_path: Path, demo_tree: DemoTree) -> None:
    info, url = demo_tree
    settings = _settings(tmp_path, DistroSettings(upstream_url=url, public_keys=[info.public_key_text]))
    sessions = session_factory(create_engine_for(settings.resolved_database_url))
    assert refresh_catalog(settings, sessions) == 0
    catalog = Catalog(sessions, settings.distros)
    assert catalog.version("openwrt", "24.10.5") is not None
    assert refresh_catalog(settings, sessions) == 0  # nothing changed: still fine



def test_refresh_reports_an_upstream_signed_by_another_key(tmp_path: Path, demo_tree: DemoTree) -> None:
    _, url = demo_tree
    other_key = "RWSrHfFmlHslUcLbXFIRp+eEikWF9z1N77IJiX5Bt/nJd1a/x+L+SU89"
    settings = _settings(tmp_path, DistroSettings(upstream_url=url, public_keys=[other_key]))
    sessions = session_factory(create_engine_for(settings.resolved_database_url))
    assert refresh_catalog(settings, sessions) > 0
    assert Catalog(sessions, settings.distros).target("openwrt", "24.10.5", "x86/64") is None


def test_housekeeping_forgets_old_upgrade_checks_only(tmp_path: Path) -> None:
    settings = _settings(tmp_path, DistroSettings(upstream_url="file:///nonexistent", public_keys=[]))
    sessions = session_factory(create_engine_for(settings.resolved_database_url))
    old = UpgradeCheckRequest(distro="openwrt", version="24.10.4", target="x86/64")
    new = UpgradeCheckRequest(distro="openwrt", version="24.10.5", target="x86/64")
    save_check(sessions, old, None)
    save_check(sessions, new, None)
    with sessions() as session:
        session.execute(
            update(UpgradeCheckRecord)
            .where(UpgradeCheckRecord.request_hash == old.request_hash)
            .values(checked_at=datetime.now(UTC) - settings.stats_retention - timedelta(days=1))
        )
        session.commit()
    housekeeping(settings, sessions)
    assert load_check(sessions, old.request_hash) is None
    assert load_check(sessions, new.request_hash) is not None
