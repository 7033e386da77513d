"""Package renames and removals between releases, and the revisions where release branches split off.

Clients (LuCI, owut, auc) read ``branches[<branch>].package_changes`` from ``/json/v1/overview.json`` and
apply every change whose ``revision`` lies between the installed and the target revision. A change with
``source`` and no ``target`` means *remove source* (what all three clients do).

The defaults are the table of the reference server (openwrt/asu ``asu/config.py``); a distribution may
replace it with ``package_changes`` and ``branch_off_rev`` in its settings.
"""

from __future__ import annotations

from collections.abc import Sequence

from asud.config import DistroSettings, PackageChange

#: OpenWrt's package changes, oldest first.
DEFAULT_PACKAGE_CHANGES: tuple[PackageChange, ...] = (
    PackageChange(source="firewall", target="firewall4", revision=18611),
    PackageChange(source="kmod-nft-nat6", revision=20282, mandatory=True),
    PackageChange(source="libustream-wolfssl", target="libustream-mbedtls", revision=21994),
    PackageChange(source="px5g-wolfssl", target="px5g-mbedtls", revision=21994),
    PackageChange(source="wpad-basic-wolfssl", target="wpad-basic-mbedtls", revision=21994),
    PackageChange(source="luci-app-diag-core", revision=25984, mandatory=True),
    PackageChange(source="auc", target="owut", revision=26792),
    PackageChange(source="luci-app-opkg", target="luci-app-package-manager", revision=27897),
    PackageChange(source="opkg", target="apk-mbedtls", revision=28056),
)

#: Revision (``rNNNNN`` of main) at which each OpenWrt release branch was created.
DEFAULT_BRANCH_OFF_REV: dict[str, int] = {
    "21.02": 15812,
    "22.03": 19160,
    "23.05": 23069,
    "24.10": 27990,
    "25.12": 31003,
}


def package_changes_for(distro: DistroSettings) -> tuple[PackageChange, ...]:
    """The distribution's table: its own when configured, else OpenWrt's."""
    if distro.package_changes is not None:
        return tuple(distro.package_changes)
    return DEFAULT_PACKAGE_CHANGES


def branch_off_rev_for(distro: DistroSettings, branch: str) -> int | None:
    """Where ``branch`` split from main: configured value, else the OpenWrt default, else unknown."""
    if branch in distro.branch_off_rev:
        return distro.branch_off_rev[branch]
    return DEFAULT_BRANCH_OFF_REV.get(branch)


def changes_for_branch(
    changes: Sequence[PackageChange], *, snapshot: bool, branch_off_rev: int | None
) -> list[PackageChange]:
    """The changes a branch shows: everything for snapshots (and branches of unknown origin); for a
    release branch only changes made before it split off (``revision <= branch_off_rev``)."""
    if snapshot or branch_off_rev is None:
        return list(changes)
    return [change for change in changes if change.revision <= branch_off_rev]
