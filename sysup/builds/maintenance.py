"""Periodic upkeep the worker runs besides builds: keep the catalog fresh and the tables bounded.

Run by Huey periodic tasks (``sysup.refresh`` and the pruner in ``sysup.builds.runtime``), so any one
consumer — embedded in ``sysup serve`` or a ``sysup worker`` — does it; each step is idempotent and safe to
run in several processes at once.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from sysup.config import Settings

log = logging.getLogger(__name__)


def refresh_catalog(settings: Settings, sessions: sessionmaker[Session]) -> int:
    """Sync every configured distribution (conditional requests: cheap when nothing changed).

    Returns the number of errors reported; a failing distribution never stops the others.
    """
    from sysup.catalog.sync import sync_distro
    from sysup.upstream.fetch import Fetcher

    errors = 0
    with Fetcher(timeout=settings.fetch_timeout, retries=settings.fetch_retries) as fetcher:
        for name, distro in settings.distros.items():
            try:
                report = sync_distro(sessions, name, distro, fetcher)
            except Exception:
                log.exception("catalog refresh of %s failed", name)
                errors += 1
                continue
            for error in report.errors:
                log.warning("catalog refresh of %s: %s", name, error)
            errors += len(report.errors)
    return errors


def housekeeping(settings: Settings, sessions: sessionmaker[Session]) -> None:
    """Roll up statistics, forget old upgrade-check answers and trim the package cache."""
    from sysup.imagebuilders.package_cache import PackageCache
    from sysup.stats import recorder_for
    from sysup.upgrades.store import prune_checks
    from sysup.upstream.fetch import Fetcher

    engine = sessions.kw["bind"]
    recorder_for(engine).maintain(settings.stats_retention)
    prune_checks(sessions, older_than=max(settings.stats_retention, timedelta(days=1)))
    with Fetcher() as fetcher:
        PackageCache(settings.package_cache_dir, fetcher).prune(settings.package_cache_max_bytes)
