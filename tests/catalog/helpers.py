"""Helpers of the catalog tests, and the demo catalog every other test package builds on.

``load_demo_catalog(demo_tree)`` is the catalog of the demo upstream (``tests.support.upstream``), read
over HTTP exactly as the daemon reads a download server; use it from a pytest-twisted test or fixture::

    catalog = await load_demo_catalog(demo_tree)
    index = await catalog.package_index("openwrt", "24.10.4", "ath79/generic")

Its fetcher keeps no connection open, so a test that triggers a feed load leaves nothing on the reactor.
``TreeServer`` serves a private (tampered) copy of the tree from the test reactor.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed
from twisted.web.server import Site

from asud.catalog import Catalog, SyncReport, load_catalog
from asud.config import Config, load
from asud.demo.server import DemoTreeResource
from asud.upstream.fetch import Fetcher
from tests.support.upstream import DemoTree

__all__ = [
    "TreeServer",
    "copy_tree",
    "demo_config",
    "demo_fetcher",
    "load_demo",
    "load_demo_catalog",
    "replace_file",
]


def _merged(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), dict):
            result[key] = _merged(result[key], value)
        else:
            result[key] = value
    return result


def demo_config(demo_tree: DemoTree, url: str | None = None, **overrides: Any) -> Config:
    """A config whose only distribution, ``openwrt``, is the demo tree served at ``url`` (default: the
    shared server). ``overrides`` are merged in as in a TOML file: ``catalog={"feed_cache_entries": 2}``,
    ``distros={"openwrt": {"min_branch": "24.10"}}``."""
    info, served = demo_tree
    base: dict[str, Any] = {
        "distros": {"openwrt": {"upstream_url": url or served, "public_keys": [info.public_key_text]}},
    }
    return load(environ={}, **_merged(base, overrides))


def demo_fetcher(**options: Any) -> Fetcher:
    """A fetcher that keeps no connection (nothing left on the reactor after a test)."""
    return Fetcher(**{"timeout": 10.0, "retries": 0, "persistent": False, **options})


def load_demo(demo_tree: DemoTree, *, url: str | None = None, fetcher: Fetcher | None = None,
              previous: Catalog | None = None, feeds: bool = False,
              **config_overrides: Any) -> Deferred[tuple[Catalog, SyncReport]]:
    """``load_catalog`` over the demo tree; the report is returned as is (problems included)."""
    config = demo_config(demo_tree, url, **config_overrides)
    return load_catalog(config, fetcher or demo_fetcher(), previous=previous, feeds=feeds)


#: Demo catalogs already loaded, by served URL and settings: a catalog never changes once loaded (only
#: its feed cache fills), so tests share one instead of reading the tree again each time.
_loaded: dict[str, Catalog] = {}


def load_demo_catalog(demo_tree: DemoTree, **config_overrides: Any) -> Deferred[Catalog]:
    """The catalog of the demo upstream (shared by every caller with the same settings); fails when the
    load reports any problem. Treat it as read-only: ``invalidate()`` it only in a private one made with
    ``load_demo``."""
    key = repr((demo_tree[1], sorted(config_overrides.items())))
    if key in _loaded:
        return succeed(_loaded[key])

    def checked(result: tuple[Catalog, SyncReport]) -> Catalog:
        catalog, report = result
        if not report.ok:
            raise AssertionError("the demo catalog did not load cleanly:\n" + "\n".join(report.lines()))
        _loaded[key] = catalog
        return catalog

    return load_demo(demo_tree, **config_overrides).addCallback(checked)


def copy_tree(source: Path, dest: Path) -> Path:
    """A private copy of the shared tree (hard links: cheap; edit files by replacing, never in place)."""
    shutil.copytree(source, dest, copy_function=os.link)
    return dest


def replace_file(path: Path, data: bytes) -> None:
    """Replace ``path`` with new bytes without touching the (hard-linked) original."""
    path.unlink()
    path.write_bytes(data)


class TreeServer:
    """Serves a tree from the test reactor on 127.0.0.1 (asud's demo server resource: ETag, Last-Modified,
    304); ``start()`` gives the URL, ``await stop()`` at the end. Server connections have no idle timer,
    so nothing is left on the reactor."""

    def __init__(self, root: Path) -> None:
        self.resource = DemoTreeResource(root)
        self._port: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port.getHost().port}"

    def start(self) -> str:
        self._port = reactor.listenTCP(0, Site(self.resource, timeout=None), interface="127.0.0.1")  # type: ignore[attr-defined]
        return self.url

    def stop(self) -> Deferred[None]:
        return self._port.stopListening()  # type: ignore[no-any-return]
