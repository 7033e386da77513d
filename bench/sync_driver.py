"""``python -m bench.sync_driver``: what ``sysup sync`` does, timing only the sync itself.

Run as its own process by the catalog figure, so its peak RSS is the sync's alone; prints one JSON line.
"""

from __future__ import annotations

import json
import time

from sysup.catalog.sync import sync_distro
from sysup.config import load_settings
from sysup.database import create_engine_for, session_factory
from sysup.database.migrate import upgrade_database
from sysup.upstream.fetch import Fetcher


def main() -> None:
    settings = load_settings()
    upgrade_database(settings.resolved_database_url)
    engine = create_engine_for(settings.resolved_database_url)
    results = []
    try:
        with Fetcher(timeout=settings.fetch_timeout, retries=settings.fetch_retries) as fetcher:
            for name, distro in settings.distros.items():
                started = time.perf_counter()
                report = sync_distro(session_factory(engine), name, distro, fetcher)
                results.append(
                    {
                        "distro": name,
                        "seconds": time.perf_counter() - started,
                        "requests": report.requests,
                        "not_modified": report.not_modified,
                        "bytes": report.bytes,
                        "targets": report.targets,
                        "profiles": report.profiles,
                        "packages": report.packages,
                        "errors": report.errors[:5],
                    }
                )
    finally:
        engine.dispose()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
