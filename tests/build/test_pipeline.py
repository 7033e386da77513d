"""End to end: validate → the pipeline builds with the demo ImageBuilder → result and files in the store.

Ported from sysup's tests/builds/test_worker.py (same assertions on the result; the record side — status,
``error_kind``, a second run being a no-op — is the pool's, see test_pool.py). The demo tree is served over
real HTTP on 127.0.0.1; builds run inside bwrap without network, fed by the shared package cache.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import attrs
import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import CancelledError, succeed

from asud.build.pipeline import BuildOutcome, BuildPipeline
from asud.build.request import parse_build_request
from asud.build.stages import BuildStage
from asud.build.validate import RequestLimits, ValidatedRequest, validate_request
from asud.errors import BuildError, ImageTooBig, RevisionMismatch
from asud.store.files import Store
from tests.catalog.helpers import demo_config, demo_fetcher, load_demo_catalog
from tests.support.requirements import require_executable
from tests.support.upstream import DemoTree, demo_tree

__all__ = ["demo_tree"]

pytestmark = pytest.mark.slow


@attrs.define
class Env:
    pipeline: BuildPipeline
    store: Store
    data_dir: Path


@pytest.fixture(scope="module")
def env(demo_tree: DemoTree, tmp_path_factory: pytest.TempPathFactory) -> Env:
    require_executable("mksquashfs", "squashfs-tools")
    require_executable("mke2fs", "e2fsprogs")
    require_executable("bwrap", "bubblewrap")
    root = tmp_path_factory.mktemp("pipeline")
    config = demo_config(demo_tree, data_dir=str(root), build={"kill_grace": 2})
    store = Store(config.store_dir)
    return Env(BuildPipeline.from_config(config, store, demo_fetcher()), store, root)


@pytest_twisted.async_fixture(scope="module")
async def catalog(demo_tree: DemoTree) -> Any:
    return await load_demo_catalog(demo_tree)


async def validated(catalog: Any, **fields: Any) -> ValidatedRequest:
    request = parse_build_request({"client": "test/1", **fields})
    return await validate_request(request, catalog, RequestLimits())


class Recorder:
    """A second sink: every line and stage, in order."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, str]] = []
        self.stages: list[BuildStage] = []

    def line(self, image_key: str, step: str, text: str) -> None:
        self.lines.append((image_key, step, text))

    def status(self, image_key: str, stage: BuildStage) -> None:
        self.stages.append(stage)


@pytest.mark.parametrize(
    ("version", "target", "profile", "filesystem"),
    [
        ("23.05.5", "x86/64", "generic", "ext4"),
        ("24.10.4", "ath79/generic", "tplink,archer-c7-v5", "squashfs"),
        ("25.12.1", "x86/64", "generic", "squashfs"),
        ("SNAPSHOT", "x86/64", "generic", "squashfs"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_build_each_era(env: Env, catalog: Any, version: str, target: str, profile: str,
                              filesystem: str) -> None:
    request = await validated(catalog, version=version, target=target, profile=profile, packages=["htop"],
                              filesystem=filesystem)
    recorder = Recorder()
    outcome: BuildOutcome = await env.pipeline.build(request.job(), sink=recorder)
    result = outcome.result
    assert result is not None and result["images"] and "htop" in result["manifest"]
    assert result["id"] == request.profile and result["bin_dir"] == request.bin_dir == outcome.bin_dir
    assert result["build_cmd"][:2] == ["make", "image"] and result["titles"]
    assert result["version_number"] == version and result["version_code"] == request.version_code
    assert result["target"] == target and result["build_at"].endswith("Z") and "profiles" not in result
    assert {"metadata_version", "arch_packages", "default_packages", "device_packages"} <= set(result)
    image_keys = {"name", "type", "filesystem", "sha256", "sha256_unsigned"}
    assert all(image_keys <= set(image) for image in result["images"])
    for image in result["images"]:
        served = env.store.resolve(request.bin_dir, image["name"])
        assert hashlib.sha256(served.read_bytes()).hexdigest() == image["sha256"]
    assert "build.log" in env.store.files(request.bin_dir)
    # Every line went to the extra sink too, each with its step, and build.log holds the same lines.
    steps = {step for _, step, _ in recorder.lines}
    assert {"make info", "make manifest", "make image"} <= steps
    assert {key for key, _, _ in recorder.lines} == {request.image_key}
    log_text = env.store.resolve(request.bin_dir, "build.log").read_text()
    for _, _, text in recorder.lines:
        assert text in log_text
    assert "==> make image" in log_text and "$ make image PROFILE=" in log_text
    assert recorder.stages == [
        BuildStage.DOWNLOAD_IMAGEBUILDER,
        *([BuildStage.UNPACK_IMAGEBUILDER] if BuildStage.UNPACK_IMAGEBUILDER in recorder.stages else []),
        BuildStage.VALIDATE_REVISION,
        BuildStage.VALIDATE_MANIFEST,
        BuildStage.CALCULATE_PACKAGES_HASH,
        BuildStage.BUILDING_IMAGE,
    ]
    assert not list((env.data_dir / "workspaces").iterdir())  # the workspace is gone
    assert not list((env.data_dir / "logs").iterdir())  # the log went into the store


@pytest_twisted.ensureDeferred
async def test_revision_mismatch_fails_with_reference_message(env: Env, catalog: Any) -> None:
    request = await validated(catalog, version="24.10.4", target="x86/64", profile="generic", packages=[],
                              version_code="r1-0000000000")
    with pytest.raises(RevisionMismatch) as failed:
        await env.pipeline.build(request.job())
    assert type(failed.value).__name__ == "RevisionMismatch"
    assert failed.value.detail.startswith("Error: Received incorrect version r")
    assert failed.value.detail.endswith("(requested r1-0000000000)")
    # The failure's log is kept (the 2017 API links to it), ending with the reason.
    log_text = env.store.resolve(request.bin_dir, "build.log").read_text()
    assert "==> make info" in log_text and log_text.rstrip().endswith(failed.value.detail)


@pytest_twisted.ensureDeferred
async def test_too_big_is_a_clear_failure_with_its_log(env: Env, catalog: Any) -> None:
    request = await validated(catalog, version="24.10.4", target="ath79/generic",
                              profile="tplink,tl-wr842n-v3", packages=["python3-light"])
    with pytest.raises(ImageTooBig, match=r"^Error: Selected packages exceed device storage$"):
        await env.pipeline.build(request.job())
    assert "too big" in env.store.resolve(request.bin_dir, "build.log").read_text()


@pytest_twisted.ensureDeferred
async def test_a_build_whose_lease_was_lost_stores_nothing(env: Env, catalog: Any) -> None:
    request = await validated(catalog, version="24.10.4", target="x86/64", profile="generic",
                              packages=["curl"])
    with pytest.raises(BuildError, match="lease lost"):
        await env.pipeline.build(request.job(), may_store=lambda: succeed(False))
    assert set(env.store.files(request.bin_dir)) == {"build.log"}


@pytest_twisted.ensureDeferred
async def test_cancel_stops_make_and_leaves_nothing(env: Env, catalog: Any) -> None:
    request = await validated(catalog, version="24.10.4", target="x86/64", profile="generic",
                              packages=["tcpdump"])
    recorder = Recorder()
    deferred = env.pipeline.build(request.job(), sink=recorder)

    original = recorder.status

    def status(image_key: str, stage: BuildStage) -> None:
        original(image_key, stage)
        if stage is BuildStage.VALIDATE_MANIFEST:  # `make manifest` is about to run: stop the build
            reactor.callLater(0.05, deferred.cancel)  # type: ignore[attr-defined]

    recorder.status = status  # type: ignore[method-assign]
    with pytest.raises(CancelledError):
        await deferred
    assert BuildStage.BUILDING_IMAGE not in recorder.stages
    assert not env.store.exists(request.bin_dir)
    assert not list((env.data_dir / "workspaces").iterdir())
    assert not list((env.data_dir / "logs").iterdir())


@pytest_twisted.ensureDeferred
async def test_unknown_distro(env: Env) -> None:
    job = {"distro": "nope", "image_key": "a" * 64, "bin_dir": "b" * 64}
    with pytest.raises(BuildError, match=r"^Unsupported distro: nope$"):
        await env.pipeline.build(job)


@pytest_twisted.ensureDeferred
async def test_housekeeping_keeps_what_fits(env: Env) -> None:
    before = env.pipeline.imagebuilders.entries()
    await env.pipeline.housekeeping()  # far below [cache] limits: nothing goes
    assert env.pipeline.imagebuilders.entries() == before
