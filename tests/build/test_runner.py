"""The runner maps what an ImageBuilder prints to clear errors. The ImageBuilder here is a real ``make``
that replays the real failure texts of ``shared/reference/samples/imagebuilder-error-outputs.txt``.

Ported from sysup's tests/imagebuilders/test_runner.py (same assertions); each make is a child process
on the reactor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import pytest_twisted

from asud.build.runner import ImageBuilderRunner, ImpossiblePackageSelection
from asud.build.sandbox import NoSandbox
from asud.errors import BadRequest, BuildError, ImageTooBig, SandboxError

MAKEFILE = """\
info manifest image:
\t@sh scenario.sh $@
"""

SCENARIO = """\
set -e
out="scenarios/$SCENARIO"
[ -f "$out.out" ] && cat "$out.out"
[ -f "$out.err" ] && cat "$out.err" >&2
if [ "$1" = image ] && [ -f "$out.json" ]; then
    mkdir -p "$BIN_DIR"; cp "$out.json" "$BIN_DIR/profiles.json"
fi
[ -f "$out.sh" ] && sh "$out.sh"
exit "$(cat "$out.rc" 2>/dev/null || echo 0)"
"""

PROFILES = {
    "metadata_version": 1,
    "target": "x86/64",
    "version_code": "r1-abc",
    "version_number": "SNAPSHOT",
    "arch_packages": "x86_64",
    "source_date_epoch": 1,
    "default_packages": [],
    "profiles": {
        "generic": {
            "titles": [{"title": "Generic"}],
            "images": [{"name": "img.bin", "type": "combined", "sha256": "0" * 64, "filesystem": "squashfs"}],
        }
    },
}

SCENARIOS: dict[str, dict[str, str]] = {
    "opkg-missing": {
        "out": "Unknown package 'luci-app-vpn-policy-routing'.\n",
        "rc": "2",
        "err": (
            "Collected errors:\n"
            " * opkg_install_cmd: Cannot install package luci-app-vpn-policy-routing.\n"
            "make[2]: *** [Makefile:169: package_install] Error 255\n"
            "make: *** [Makefile:242: image] Error 2\n"
        ),
    },
    "apk-missing": {
        "rc": "2",
        "err": (
            "ERROR: unable to select packages:\n  opkg (no such package):\n    required by: world[opkg]\n"
            "make[2]: *** [Makefile:225: package_install] Error 1\n"
        ),
    },
    "apk-virtual": {
        "rc": "2",
        "err": (
            "ERROR: unable to select packages:\n  libudev (virtual):\n"
            "    note: please select one of the 'provided by'\n          packages explicitly\n"
            "    provided by: libudev-zero\n    required by: usbutils-017-r1[libudev]\n"
        ),
    },
    "opkg-conflict": {
        "rc": "2",
        "err": (
            "Collected errors:\n * check_conflicts_for: The following packages conflict with dnsmasq-full:\n"
            " * check_conflicts_for: \tdnsmasq\n * opkg_install_cmd: Cannot install package dnsmasq-full.\n"
        ),
    },
    "apk-conflict": {
        "rc": "2",
        "err": (
            "ERROR: unable to select packages:\n  dnsmasq-full-2.90-r3:\n"
            "    conflicts: dnsmasq-2.90-r3[dnsmasq]\n"
            "    satisfies: world[dnsmasq-full]\n"
        ),
    },
    "ext4": {
        "rc": "2",
        "err": (
            "error: ext4_allocate_best_fit_partial: failed to allocate 6298 blocks, out of space?\n"
            "make[3]: *** [/builder/include/image.mk:367: root.ext4] Error 1\n"
        ),
    },
    "flash-too-big": {
        "err": "    WARNING: Image file /b/tmp/x.bin is too big: 9000000 > 8000000\n",
        "json": json.dumps(PROFILES),
    },
    "no-json": {"out": "done\n"},
    "wrong-profile": {"json": json.dumps({**PROFILES, "profiles": {}})},
    "ok": {"out": "Calculating checksums...\n", "json": json.dumps(PROFILES)},
    "profile": {
        "rc": "1",
        "out": 'Profile "nope" does not exist!\nUse "make info" to get a list of available profile names.\n',
    },
    "other": {"rc": "2", "err": "ERROR: something odd happened\nmake: *** [Makefile:1: image] Error 2\n"},
    "manifest": {"out": "base-files - 1-r1\nbusybox - 1.36.1-r2\nlibubox - 2024.03.29-r1\n"},
    "sleep": {"sh": "sleep 30"},
    "flood": {"sh": "yes flood | head -c 1000000"},
}


@pytest.fixture
def ib(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "scenarios").mkdir(parents=True)
    (ws / "Makefile").write_text(MAKEFILE)
    (ws / "scenario.sh").write_text(SCENARIO)
    for name, files in SCENARIOS.items():
        for suffix, text in files.items():
            (ws / "scenarios" / f"{name}.{suffix}").write_text(text)
    return ws


def runner(ib: Path, scenario: str, *, timeout: float = 30, limit: int = 1 << 20,
           lines: list[tuple[str, str]] | None = None) -> ImageBuilderRunner:
    return ImageBuilderRunner(
        ib, NoSandbox(kill_grace=1), timeout, limit, env={"SCENARIO": scenario},
        on_line=(lambda step, text: lines.append((step, text))) if lines is not None else None,
    )


def image(run: ImageBuilderRunner, tmp_path: Path, profile: str = "generic"):
    return run.image(
        profile,
        ["busybox"],
        bin_dir=tmp_path / "bin",
        files_dir=None,
        extra_image_name="x",
        rootfs_partsize=None,
        rootfs_filesystem=None,
        supports_rootfs_filesystem=False,
    )


@pytest.mark.parametrize(
    ("scenario", "packages", "detail"),
    [
        ("opkg-missing", ["luci-app-vpn-policy-routing"], "cannot install luci-app-vpn-policy-routing"),
        ("apk-missing", ["opkg"], "cannot install opkg"),
        ("apk-virtual", ["libudev"], "libudev is a virtual package"),
        ("opkg-conflict", ["dnsmasq-full"], "cannot install dnsmasq-full"),
        ("apk-conflict", ["dnsmasq-full-2.90-r3", "dnsmasq-2.90-r3"], "conflicts with"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_package_failures_name_the_package(
    ib: Path, scenario: str, packages: list[str], detail: str
) -> None:
    with pytest.raises(ImpossiblePackageSelection) as caught:
        await runner(ib, scenario).manifest("generic", ["x"])
    assert caught.value.packages == packages
    assert detail in caught.value.detail
    assert SCENARIOS[scenario]["err"] in caught.value.stderr  # the IB's own words are kept


@pytest.mark.parametrize("scenario", ["ext4", "flash-too-big"])
@pytest_twisted.ensureDeferred
async def test_too_big(ib: Path, tmp_path: Path, scenario: str) -> None:
    with pytest.raises(ImageTooBig) as caught:
        await image(runner(ib, scenario), tmp_path)
    assert caught.value.detail == "Error: Selected packages exceed device storage"
    assert "too big" in caught.value.stderr or "out of space?" in caught.value.stderr


@pytest_twisted.ensureDeferred
async def test_missing_or_incomplete_profiles_json(ib: Path, tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"^No JSON file found$"):
        await image(runner(ib, "no-json"), tmp_path)
    with pytest.raises(BuildError, match=r"^Profile not found in JSON file$"):
        await image(runner(ib, "wrong-profile"), tmp_path / "2")


@pytest_twisted.ensureDeferred
async def test_image_success(ib: Path, tmp_path: Path) -> None:
    result = await image(runner(ib, "ok"), tmp_path, profile="DEVICE_generic")
    assert result.profiles.version_code == "r1-abc"
    assert result.bin_dir == (tmp_path / "bin").resolve()
    assert result.build_cmd == [
        "make",
        "image",
        "PROFILE=DEVICE_generic",
        "PACKAGES=busybox",
        "EXTRA_IMAGE_NAME=x",
        f"BIN_DIR={result.bin_dir}",
    ]
    assert "Calculating checksums" in result.stdout


@pytest_twisted.ensureDeferred
async def test_other_failures(ib: Path) -> None:
    with pytest.raises(BuildError, match='Profile "nope" does not exist!'):
        await runner(ib, "profile").manifest("nope", [])
    with pytest.raises(BuildError, match="something odd happened") as caught:
        await runner(ib, "other").manifest("generic", [])
    assert type(caught.value) is BuildError


@pytest_twisted.ensureDeferred
async def test_manifest_parsed(ib: Path) -> None:
    assert await runner(ib, "manifest").manifest("generic", ["busybox", "-ppp"]) == {
        "base-files": "1-r1",
        "busybox": "1.36.1-r2",
        "libubox": "2024.03.29-r1",
    }


@pytest_twisted.ensureDeferred
async def test_timeout_and_output_limit_are_sandbox_errors(ib: Path) -> None:
    with pytest.raises(SandboxError, match="timed out"):
        await runner(ib, "sleep", timeout=0.5).manifest("generic", [])
    with pytest.raises(SandboxError, match="more than 10000 bytes"):
        await runner(ib, "flood", limit=10_000).manifest("generic", [])


@pytest.mark.parametrize(
    ("profile", "packages", "extra"),
    [
        ("generic", ["$(shell id)"], "x"),
        ("generic", ["a b"], "x"),
        ("gen eric", [], "x"),
        ("generic", ["ok"], "x;rm"),
        ("generic", ["ok\nEVIL=1"], "x"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_unsafe_values_never_reach_make(
    ib: Path, tmp_path: Path, profile: str, packages: list[str], extra: str
) -> None:
    with pytest.raises(BadRequest):
        await runner(ib, "ok").image(
            profile,
            packages,
            bin_dir=tmp_path / "bin",
            files_dir=None,
            extra_image_name=extra,
            rootfs_partsize=None,
            rootfs_filesystem=None,
            supports_rootfs_filesystem=False,
        )
    assert not (tmp_path / "bin").exists()


@pytest_twisted.ensureDeferred
async def test_image_command_options(ib: Path, tmp_path: Path) -> None:
    run = runner(ib, "ok")
    argv = run.image_command(
        "generic",
        ["luci", "-ppp", "busybox=1.36.1-r2"],
        bin_dir=tmp_path / "b",
        files_dir=tmp_path / "f",
        extra_image_name="abc",
        rootfs_partsize=256,
        rootfs_filesystem="ext4",
        supports_rootfs_filesystem=True,
    )
    assert argv[2:] == [
        "PROFILE=generic",
        "PACKAGES=luci -ppp busybox=1.36.1-r2",
        "EXTRA_IMAGE_NAME=abc",
        f"BIN_DIR={(tmp_path / 'b').resolve()}",
        f"FILES={(tmp_path / 'f').resolve()}",
        "ROOTFS_PARTSIZE=256",
        "ROOTFS_FILESYSTEM=ext4",
    ]
    old = run.image_command(
        "generic", [], bin_dir=tmp_path / "b", rootfs_filesystem="ext4", supports_rootfs_filesystem=False
    )
    assert not any(arg.startswith("ROOTFS_FILESYSTEM") for arg in old)
    assert not await run.supports_rootfs_filesystem()  # this IB has no _check_rootfs_filesystem target


@pytest_twisted.ensureDeferred
async def test_every_line_goes_to_the_sink_with_its_step(ib: Path, tmp_path: Path) -> None:
    lines: list[tuple[str, str]] = []
    await runner(ib, "manifest", lines=lines).manifest("generic", ["busybox"])
    await image(runner(ib, "ok", lines=lines), tmp_path)
    steps = [step for step, _ in lines]
    assert ("make manifest", "busybox - 1.36.1-r2") in lines
    assert ("make image", "Calculating checksums...") in lines
    assert steps.index("make image") > steps.index("make manifest")
