"""End to end: validate → submit → worker builds with the demo ImageBuilder → result in the store.

The demo tree is served over real HTTP on 127.0.0.1; builds run inside bwrap without network, fed by the
shared package cache, exactly as in production.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from asud.build.stages import BuildStatus
from asud.demo.generator import generate_tree
from asud.store.files import Store
from sysup.build_requests.models import BuildRequest
from sysup.build_requests.validate import RequestLimits, validate_request
from sysup.builds.package_source import CachedPackages
from sysup.builds.service import BuildService
from sysup.builds.worker import WorkerContext, run_build
from sysup.catalog.queries import Catalog
from sysup.catalog.sync import sync_distro
from sysup.config import DistroSettings
from sysup.database import create_engine_for, session_factory
from sysup.database.migrate import upgrade_database
from sysup.imagebuilders.cache import ImageBuilderCache
from sysup.imagebuilders.package_cache import PackageCache
from sysup.imagebuilders.runner import ImageBuilderRunner
from sysup.imagebuilders.sandbox import find_sandbox
from sysup.imagebuilders.workspace import make_workspace
from sysup.upstream.fetch import Fetcher
from tests.builds.factories import _models
from tests.support.requirements import require_executable

pytestmark = pytest.mark.slow


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Env:
    catalog: Catalog
    service: BuildService
    context: WorkerContext
    store: Store
    enqueued: list[int]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    require_executable("mksquashfs", "squashfs-tools")
    require_executable("mke2fs", "e2fsprogs")
    require_executable("bwrap", "bubblewrap")
    root = tmp_path_factory.mktemp("e2e")
    handler = functools.partial(_QuietHandler, directory=str(root / "up"))
    handler = functools.partial(_QuietHandler, directory=str(root / "up"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    base_url = f"http://127.0.0.1:{server.server_address[1]}"
    tree = generate_tree(root / "up", base_url=base_url)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"sqlite:///{root / 'sysup.db'}"
    upgrade_database(url)
    engine = create_engine_for(url)
    _models.Base.metadata.create_all(engine, tables=[_models.Build.__table__,
                                                     _models.BuildRequestRecord.__table__])
    sessions = session_factory(engine)
    distro = DistroSettings(upstream_url=base_url, public_keys=[tree.public_key_text])
    fetcher = Fetcher()
    report = sync_distro(sessions, "openwrt", distro, fetcher)
    assert report.errors == []
    store = Store(root / "store")
    enqueued: list[int] = []
    context = WorkerContext(
        sessions=sessions, store=store,
        ib_cache=ImageBuilderCache(root / "ibs", fetcher, 10 * 1024**3),
        sandbox=find_sandbox("bwrap"), make_workspace=make_workspace,
        make_runner=ImageBuilderRunner,
        workspace_root=root / "workspaces", distros={"openwrt": distro},
        packages=CachedPackages(PackageCache(root / "packages", fetcher), {"openwrt": distro.public_keys}),
    )
    yield Env(Catalog(sessions, {"openwrt": distro}), BuildService(sessions, enqueued.append), context, store,
              enqueued)
    server.shutdown()
    fetcher.close()
    engine.dispose()


@pytest.mark.parametrize(
    ("version", "target", "profile", "filesystem"),
    [
        ("23.05.5", "x86/64", "generic", "ext4"),
        ("24.10.4", "ath79/generic", "tplink,archer-c7-v5", "squashfs"),
        ("25.12.1", "x86/64", "generic", "squashfs"),
        ("SNAPSHOT", "x86/64", "generic", "squashfs"),
    ],
)
def test_build_each_era(env: Env, version: str, target: str, profile: str, filesystem: str) -> None:
    request = BuildRequest.model_validate(
        {"version": version, "target": target, "profile": profile, "packages": ["htop"],
         "filesystem": filesystem, "client": "test/1"}
    )
    validated = validate_request(request, env.catalog, RequestLimits())
    view = env.service.submit(validated)
    assert view.status is BuildStatus.QUEUED
    run_build(env.enqueued[-1], env.context)
    done = env.service.get(validated.request_hash)
    assert done is not None
    assert done.status is BuildStatus.DONE, (done.detail, done.stderr[-2000:])
    result = done.result
    assert result is not None and result["images"] and "htop" in result["manifest"]
    assert result["id"] == validated.profile and result["bin_dir"] == validated.bin_dir
    assert result["build_cmd"][:2] == ["make", "image"] and result["titles"]
    assert result["version_number"] == version and result["version_code"] == validated.version_code
    assert result["target"] == target and result["build_at"].endswith("Z") and "profiles" not in result
    assert {"metadata_version", "arch_packages", "default_packages", "device_packages"} <= set(result)
    image_keys = {"name", "type", "filesystem", "sha256", "sha256_unsigned"}
    assert all(image_keys <= set(image) for image in result["images"])
    for image in result["images"]:
        served = env.store.resolve(validated.bin_dir, image["name"])
        assert hashlib.sha256(served.read_bytes()).hexdigest() == image["sha256"]
    assert "build.log" in env.store.files(validated.bin_dir)
    # a second run of the task is a no-op
    run_build(env.enqueued[-1], env.context)


def test_revision_mismatch_fails_with_reference_message(env: Env) -> None:
    request = BuildRequest.model_validate(
        {"version": "24.10.4", "target": "x86/64", "profile": "generic", "packages": [],
         "version_code": "r1-0000000000"}
    )
    validated = validate_request(request, env.catalog, RequestLimits())
    env.service.submit(validated)
    run_build(env.enqueued[-1], env.context)
    failed = env.service.get(validated.request_hash)
    assert failed is not None and failed.status is BuildStatus.FAILED
    assert failed.error_kind == "RevisionMismatch"
    assert failed.detail.startswith("Error: Received incorrect version r")
    assert failed.detail.endswith("(requested r1-0000000000)")
