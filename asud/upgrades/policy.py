"""Which release an installed system should move to: real OpenWrt ordering, never a downgrade.

Releases order by :func:`~asud.upstream.version_order.release_key` (``24.10.0-rc1 < 24.10.0 < 24.10.10``).
Snapshots (``SNAPSHOT``, ``24.10-SNAPSHOT``) are rebuilt in place under one name, so a snapshot is only
newer than an installed build of the same branch when its revision number (``rNNNNN``) is larger; revision
numbers count commits of one branch, so they are compared within a branch only.

    policy = UpgradePolicy()
    choose_target_version("24.10.4", ["23.05.5", "24.10.5", "25.12.1"], policy)   # "24.10.5"
    choose_target_version("24.10.5", ["23.05.5", "24.10.5", "25.12.1"], policy)   # "25.12.1"
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from asud.upstream.version_order import branch_of, release_key

__all__ = ["UpgradePolicy", "choose_target_version", "is_release_candidate", "is_snapshot"]


@dataclass(frozen=True, slots=True)
class UpgradePolicy:
    """What an upgrade check may offer."""

    #: Offer the newest point release of the installed branch before a newer branch.
    same_branch_first: bool = True
    #: Offer ``SNAPSHOT``/``XX.YY-SNAPSHOT`` to systems running a release. A system running a snapshot
    #: always follows its own snapshot (by revision), whatever this says.
    include_snapshots: bool = False
    #: Offer release candidates (``25.12.0-rc2``).
    include_rc: bool = False
    #: Move one branch at a time (23.05 → 24.10, not → 25.12): OpenWrt only promises that settings survive
    #: an upgrade to the next major release.
    next_branch_only: bool = False


def is_snapshot(version: str) -> bool:
    """``SNAPSHOT`` or ``XX.YY-SNAPSHOT``."""
    return version.upper().endswith("SNAPSHOT")


def is_release_candidate(version: str) -> bool:
    """A pre-release (``-rc1``, ``-beta``): anything after ``-`` that is not ``SNAPSHOT``."""
    return "-" in version and not is_snapshot(version)


def _is_newer(
    candidate: str, installed: str, candidate_revision: int | None, installed_revision: int | None
) -> bool:
    """Whether ``candidate`` is a real upgrade of ``installed``."""
    if candidate == installed and not is_snapshot(installed):
        return False
    same_branch = branch_of(candidate) == branch_of(installed)
    if same_branch and (is_snapshot(candidate) or is_snapshot(installed)):
        # A snapshot's name says nothing about its age: only revisions of the same branch can.
        if candidate_revision is None or installed_revision is None:
            return False
        return candidate_revision > installed_revision
    return release_key(candidate) > release_key(installed)


def _branch_key(version: str) -> tuple[int, ...]:
    return release_key(branch_of(version))


def _allowed(candidate: str, installed: str, policy: UpgradePolicy) -> bool:
    if is_snapshot(candidate):
        return policy.include_snapshots or candidate.upper() == installed.upper()
    if is_release_candidate(candidate):
        return policy.include_rc
    return True


def choose_target_version(
    installed: str,
    available: Iterable[str],
    policy: UpgradePolicy,
    *,
    installed_revision: int | None = None,
    revisions: Mapping[str, int | None] | None = None,
) -> str | None:
    """The version to offer, or ``None`` when nothing allowed is newer.

    With ``same_branch_first`` the newest allowed version of the installed branch wins when there is one;
    otherwise (or without it) the newest allowed version overall (of the nearest newer branch with
    ``next_branch_only``). ``installed_revision`` and ``revisions``
    (version → revision number of the candidate build) are only needed for snapshots; without them a
    snapshot is never offered as an upgrade of a build of its own branch.
    """
    known = revisions or {}
    candidates = [
        version
        for version in dict.fromkeys(available)
        if _allowed(version, installed, policy)
        and _is_newer(version, installed, known.get(version), installed_revision)
    ]
    if not candidates:
        return None
    own_branch = branch_of(installed)
    if policy.next_branch_only:
        others = [version for version in candidates if branch_of(version) != own_branch]
        if others:
            nearest = min(_branch_key(version) for version in others)
            candidates = [
                version
                for version in candidates
                if branch_of(version) == own_branch or _branch_key(version) == nearest
            ]
    if policy.same_branch_first:
        same_branch = [version for version in candidates if branch_of(version) == own_branch]
        if same_branch:
            candidates = same_branch
    return max(candidates, key=lambda version: (release_key(version), known.get(version) or 0))
