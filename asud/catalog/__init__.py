"""What the daemon knows of its distributions, in memory: versions, targets, profiles, package feeds.

* ``load_catalog`` (``asud.catalog.load``): read the download servers (signed, conditional requests).
* ``Catalog`` (``asud.catalog.catalog``): the read side; package data as Deferreds, feeds on first use.
* ``CatalogService`` (``asud.catalog.service``): first load at start, refresh on a ``LoopingCall``.
* ``SyncReport`` (``asud.catalog.report``): what a load read, skipped and refused, as human lines.
* ``resolver``: predict the ImageBuilder's package selection (``resolve``, ``check_names``).
"""

from asud.catalog.catalog import Catalog
from asud.catalog.info import BranchInfo, TargetInfo, VersionInfo
from asud.catalog.load import load_catalog
from asud.catalog.report import SyncReport
from asud.catalog.service import CatalogService

__all__ = [
    "BranchInfo",
    "Catalog",
    "CatalogService",
    "SyncReport",
    "TargetInfo",
    "VersionInfo",
    "load_catalog",
]
