"""Upgrade checks: which newer release (and which newer packages) a device can move to.

``policy`` picks the version to offer, ``package_changes`` carries a package list across releases,
``check`` compares a device with the catalog, ``request`` reads and hashes what clients send, ``store``
keeps the answers (table in ``models``) so they can be fetched again by hash.
"""

from asud.upgrades.policy import UpgradePolicy, choose_target_version
from sysup.upgrades.check import UpgradeCheck, check_upgrade
from sysup.upgrades.package_changes import apply_package_changes
from sysup.upgrades.request import MissingField, UpgradeCheckRequest, parse_legacy_request, resolve_distro
from sysup.upgrades.store import StoredCheck, load_check, prune_checks, save_check

__all__ = [
    "MissingField",
    "StoredCheck",
    "UpgradeCheck",
    "UpgradeCheckRequest",
    "UpgradePolicy",
    "apply_package_changes",
    "check_upgrade",
    "choose_target_version",
    "load_check",
    "parse_legacy_request",
    "prune_checks",
    "resolve_distro",
    "save_check",
]
