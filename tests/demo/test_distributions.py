"""The demo's second distribution: its own tree, release, target, key and file names."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from asud.demo.distributions import FACTORY_ONLY_DEVICE, NO_IMAGES_DEVICE
from asud.demo.generator import TreeInfo, generate_tree
from asud.demo.signing import demo_key
from tests.support.requirements import require_executable


@pytest.fixture(scope="module")
def libremesh(tmp_path_factory: pytest.TempPathFactory) -> TreeInfo:
    return generate_tree(tmp_path_factory.mktemp("libremesh") / "tree", distribution="libremesh")


def test_one_release_one_target_and_its_own_key(libremesh: TreeInfo) -> None:
    assert libremesh.versions == ["2024.1"]
    assert libremesh.targets == {"2024.1": {"ath79/generic": "mips_24kc"}}
    assert libremesh.fingerprint == demo_key(1, "libremesh").fingerprint != demo_key(1).fingerprint
    versions = json.loads((libremesh.root / ".versions.json").read_text())
    assert versions == {
        "stable_version": "2024.1",
        "oldstable_version": "",
        "upcoming_version": "",
        "versions_list": ["2024.1"],
    }
    assert (libremesh.root / "keys" / f"{libremesh.fingerprint}.pub").read_text() == libremesh.public_key_text


def test_signed_with_its_key_not_openwrts(libremesh: TreeInfo, tmp_path: Path) -> None:
    signify = require_executable("signify-openbsd")
    sums = libremesh.version_dir("2024.1") / "targets/ath79/generic/sha256sums"
    own, other = tmp_path / "own.pub", tmp_path / "other.pub"
    own.write_text(libremesh.public_key_text)
    other.write_text(demo_key(1).public_key.to_text())
    command = [signify, "-V", "-m", str(sums), "-x", f"{sums}.sig", "-p"]
    assert subprocess.run([*command, str(own)], capture_output=True).returncode == 0
    assert subprocess.run([*command, str(other)], capture_output=True).returncode != 0


def test_profiles_carry_the_status_code_quirks(libremesh: TreeInfo) -> None:
    target_dir = libremesh.version_dir("2024.1") / "targets/ath79/generic"
    profiles = json.loads((target_dir / "profiles.json").read_text())["profiles"]
    assert [image["type"] for image in profiles[FACTORY_ONLY_DEVICE]["images"]] == ["factory"]
    assert profiles[NO_IMAGES_DEVICE]["images"] == []
    name = profiles["librerouter_librerouter-v1"]["images"][0]["name"]
    assert name.startswith("libremesh-2024.1-ath79-generic-librerouter_librerouter-v1-")
    assert (target_dir / "libremesh-imagebuilder-2024.1-ath79-generic.Linux-x86_64.tar.zst").is_file()


def test_unknown_distribution_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown demo distribution"):
        generate_tree(tmp_path / "tree", distribution="nope")
