"""Which version an installed system is offered, over the real ``.versions.json`` list."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from asud.upgrades.policy import UpgradePolicy, choose_target_version

DEFAULT = UpgradePolicy()


@pytest.fixture(scope="module")
def releases(samples_dir: Path) -> list[str]:
    document = json.loads((samples_dir / "versions.json").read_text())
    return list(document["versions_list"])


@pytest.mark.parametrize(
    ("installed", "expected"),
    [
        ("24.10.4", "24.10.8"),  # newest point release of the same branch first
        ("24.10.0", "24.10.8"),
        ("24.10.8", "25.12.5"),  # branch up to date: newest stable branch
        ("23.05.6", "25.12.5"),
        ("19.07.9", "19.07.10"),  # numbers, not text: 19.07.10 > 19.07.9
        ("24.10.0-rc1", "24.10.8"),  # a release candidate is older than its release
        ("25.12.0-rc3", "25.12.5"),
        ("17.01.1", "17.01.7"),
        ("25.12.5", None),  # the newest release is up to date
        ("26.03.0", None),  # never a downgrade, even from a version the list does not know
    ],
)
def test_default_policy(releases: list[str], installed: str, expected: str | None) -> None:
    assert choose_target_version(installed, releases, DEFAULT) == expected


def test_order_of_the_list_does_not_matter(releases: list[str]) -> None:
    shuffled = list(releases)
    random.Random(7).shuffle(shuffled)
    assert choose_target_version("19.07.9", shuffled, DEFAULT) == "19.07.10"
    assert choose_target_version("22.03.3", shuffled, UpgradePolicy(same_branch_first=False)) == "25.12.5"


def test_without_same_branch_first_the_newest_release_wins(releases: list[str]) -> None:
    assert choose_target_version("24.10.4", releases, UpgradePolicy(same_branch_first=False)) == "25.12.5"


def test_next_branch_only_moves_one_branch_at_a_time(releases: list[str]) -> None:
    policy = UpgradePolicy(next_branch_only=True)
    assert choose_target_version("23.05.6", releases, policy) == "24.10.8"
    assert choose_target_version("23.05.2", releases, policy) == "23.05.6"
    step = UpgradePolicy(same_branch_first=False, next_branch_only=True)
    assert choose_target_version("23.05.2", releases, step) == "24.10.8"


def test_release_candidates_only_when_asked() -> None:
    available = ["24.10.8", "25.12.0-rc1", "25.12.0-rc2"]
    assert choose_target_version("24.10.8", available, DEFAULT) is None
    assert choose_target_version("24.10.8", available, UpgradePolicy(include_rc=True)) == "25.12.0-rc2"
    # the final release beats its candidates
    assert choose_target_version("25.12.0-rc2", [*available, "25.12.0"], DEFAULT) == "25.12.0"


def _choose(
    installed: str, available: list[str], policy: UpgradePolicy, revision: int, revisions: dict[str, int]
) -> str | None:
    """``choose_target_version`` for a build at ``revision``, candidates at ``revisions``."""
    return choose_target_version(
        installed, available, policy, installed_revision=revision, revisions=revisions
    )


def test_snapshot_follows_its_revision() -> None:
    available = ["24.10.8", "25.12.5", "SNAPSHOT"]
    newer = {"SNAPSHOT": 32870}
    assert _choose("SNAPSHOT", available, DEFAULT, 32000, newer) == "SNAPSHOT"
    assert _choose("SNAPSHOT", available, DEFAULT, 32870, newer) is None
    assert _choose("SNAPSHOT", available, DEFAULT, 33000, newer) is None
    # without revisions nothing says the snapshot is newer
    assert choose_target_version("SNAPSHOT", available, DEFAULT) is None


def test_branch_snapshot() -> None:
    available = ["24.10.8", "24.10-SNAPSHOT", "25.12.5"]
    revisions = {"24.10-SNAPSHOT": 29500}
    assert _choose("24.10-SNAPSHOT", available, DEFAULT, 29400, revisions) == "24.10-SNAPSHOT"
    # the branch snapshot is built: a newer branch is next
    assert _choose("24.10-SNAPSHOT", available, DEFAULT, 29500, revisions) == "25.12.5"
    # a release of the snapshot's own branch is never an upgrade of that snapshot
    assert choose_target_version("24.10-SNAPSHOT", ["24.10.8"], DEFAULT, installed_revision=29000) is None


def test_snapshots_offered_to_releases_only_when_asked() -> None:
    available = ["25.12.5", "25.12-SNAPSHOT", "SNAPSHOT"]
    revisions = {"25.12-SNAPSHOT": 32500, "SNAPSHOT": 33000}
    assert _choose("25.12.5", available, DEFAULT, 32400, revisions) is None
    with_snapshots = UpgradePolicy(include_snapshots=True)
    assert _choose("25.12.5", available, with_snapshots, 32400, revisions) == "25.12-SNAPSHOT"
    anywhere = UpgradePolicy(include_snapshots=True, same_branch_first=False)
    assert _choose("25.12.5", available, anywhere, 32400, revisions) == "SNAPSHOT"
