"""One build, start to finish: what the Huey task runs for a build id.

Sequence (upstream-formats §2.9): lease the build → ImageBuilder from the verified cache → private
workspace → verified package indexes → ``make info`` (revision check) → ``make manifest`` (pinned versions
check) → packages prefetched → ``make image`` → ``BIN_DIR/profiles.json`` → files into the store, where
``images[].sha256`` is recomputed from the stored bytes → result recorded. Each stage is written to the
build record as it starts, and the lease is renewed by a thread meanwhile.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from asud.build.stages import BuildStage
from asud.errors import AsudError, BuildError, ImageTooBig, RevisionMismatch
from asud.store.files import Store
from asud.upstream.usign import parse_public_key
from sysup.builds import records
from sysup.builds.records import SessionFactory
from sysup.config import DistroSettings

log = logging.getLogger(__name__)

#: Where a ``defaults`` script goes inside ``FILES`` (the reference's name).
DEFAULTS_PATH = Path("etc/uci-defaults/99-asu-defaults")


class PackageSource(Protocol):
    """Fills a workspace with verified package indexes and packages and points the ImageBuilder at them
    (the sandbox has no network). Adapted from ``sysup.imagebuilders`` by the wiring."""

    def prepare_indexes(self, workspace_path: Path, job: Mapping[str, Any]) -> Any:
        """Verified indexes into the workspace; returns state handed to ``prepare_packages``."""

    def prepare_packages(
        self, workspace_path: Path, job: Mapping[str, Any], manifest: Mapping[str, str], prepared: Any
    ) -> None: ...


@dataclass
class WorkerContext:
    """Everything a worker process needs, made once per process by the wiring (``sysup worker``)."""

    sessions: SessionFactory
    store: Store
    ib_cache: Any  #: ``sysup.imagebuilders.ImageBuilderCache``
    sandbox: Any  #: ``sysup.imagebuilders.Sandbox``
    make_workspace: Callable[[Path, Path], Any]  #: ``sysup.imagebuilders.make_workspace``
    make_runner: Callable[..., Any]  #: ``sysup.imagebuilders.ImageBuilderRunner``
    workspace_root: Path
    distros: Mapping[str, DistroSettings]
    build_timeout: timedelta = timedelta(minutes=10)
    output_limit: int = 2 * 1024**3
    lease_timeout: timedelta = timedelta(seconds=60)
    lease_renew_interval: timedelta = timedelta(seconds=10)
    packages: PackageSource | None = None
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")


class _LeaseKeeper(threading.Thread):
    """Renews the lease every ``interval`` until stopped."""

    def __init__(self, context: WorkerContext, build_id: int, owner: str) -> None:
        super().__init__(name=f"lease-{build_id}", daemon=True)
        self._context, self._build_id, self._owner = context, build_id, owner
        self._stop_event = threading.Event()
        self.lost = False

    def run(self) -> None:
        interval = self._context.lease_renew_interval.total_seconds()
        while not self._stop_event.wait(interval):
            try:
                renewed = records.renew(self._context.sessions, self._build_id, self._owner,
                                        self._context.lease_timeout)
            except Exception as error:  # database briefly away: keep building, try again next interval
                log.warning("build %s: lease renewal failed (%s), retrying", self._build_id, error)
                continue
            if not renewed:
                self.lost = True
                log.warning("build %s: lease lost", self._build_id)
                return

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


def run_build(build_id: int, context: WorkerContext) -> None:
    """Build ``build_id`` if it is queued (or its lease expired); a no-op otherwise (idempotent task)."""
    owner = f"{context.owner}:{threading.get_ident()}"
    job = records.claim(context.sessions, build_id, owner, context.lease_timeout)
    if job is None:
        return
    keeper = _LeaseKeeper(context, build_id, owner)
    keeper.start()
    try:
        pipeline = _Pipeline(build_id, job, context, owner)
        result, stdout, stderr = pipeline.run()
        records.finish_done(context.sessions, build_id, owner, result=result, bin_dir=job["bin_dir"],
                            stdout=stdout, stderr=stderr)
    except BuildError as error:
        _keep_failure_log(context.store, job, error)
        records.finish_failed(context.sessions, build_id, owner, detail=error.detail,
                              error_kind=type(error).__name__, stdout=error.stdout, stderr=error.stderr)
    except AsudError as error:
        _keep_failure_log(context.store, job, error)
        records.finish_failed(context.sessions, build_id, owner, detail=error.detail,
                              error_kind=type(error).__name__)
    except Exception as error:
        log.exception("build %s failed unexpectedly", build_id)
        records.finish_failed(context.sessions, build_id, owner,
                              detail=f"Error: internal server error ({type(error).__name__})",
                              error_kind="InternalError", stderr=traceback.format_exc())
    finally:
        keeper.stop()


class _Pipeline:
    def __init__(self, build_id: int, job: dict[str, Any], context: WorkerContext, owner: str) -> None:
        self.build_id, self.job, self.context, self.owner = build_id, job, context, owner

    def stage(self, stage: BuildStage) -> None:
        records.set_stage(self.context.sessions, self.build_id, self.owner, stage)

    def run(self) -> tuple[dict[str, Any], str, str]:
        job, context = self.job, self.context
        distro = context.distros.get(job["distro"])
        if distro is None:
            raise BuildError(f"Unsupported distro: {job['distro']}")
        keys = [parse_public_key(key) for key in distro.public_keys]
        self.stage(BuildStage.DOWNLOAD_IMAGEBUILDER)

        def on_stage(name: str) -> None:
            if name == "unpack":
                self.stage(BuildStage.UNPACK_IMAGEBUILDER)

        with context.ib_cache.lease(distro.upstream_url, job["version_path"], job["target"], keys,
                                    stage=on_stage) as ib_dir:
            workspace = context.make_workspace(ib_dir, context.workspace_root)
        try:
            return self._build(Path(workspace.path))
        finally:
            workspace.cleanup()

    def _build(self, root: Path) -> tuple[dict[str, Any], str, str]:
        job, context = self.job, self.context
        prepared = context.packages.prepare_indexes(root, job) if context.packages is not None else None
        runner = context.make_runner(root, context.sandbox, context.build_timeout.total_seconds(),
                                     context.output_limit)
        self.stage(BuildStage.VALIDATE_REVISION)
        info = runner.info()
        requested = job.get("requested_version_code") or ""
        if requested and info.revision != requested:
            raise RevisionMismatch(
                f"Error: Received incorrect version {info.revision} (requested {requested})"
            )

        self.stage(BuildStage.VALIDATE_MANIFEST)
        packages = list(job["packages"])
        manifest = dict(runner.manifest(job["profile"], packages))
        for name, version in (job.get("packages_versions") or {}).items():
            if manifest.get(name) != version:
                raise BuildError(
                    f"Impossible package selection: {name} version not as requested: "
                    f"{version} vs. {manifest.get(name)}"
                )
        if context.packages is not None:
            context.packages.prepare_packages(root, job, manifest, prepared)

        self.stage(BuildStage.CALCULATE_PACKAGES_HASH)
        extra_image_name = hashlib.sha256(" ".join(sorted(manifest)).encode()).hexdigest()[:12]
        files_dir = None
        if job.get("defaults"):
            files_dir = root / "sysup-files"
            script = files_dir / DEFAULTS_PATH
            script.parent.mkdir(parents=True, exist_ok=True)
            script.write_text(job["defaults"], encoding="utf-8")
            script.chmod(0o755)

        self.stage(BuildStage.BUILDING_IMAGE)
        bin_dir = root / "sysup-bin"
        image = runner.image(
            job["profile"], packages, bin_dir=bin_dir, files_dir=files_dir, extra_image_name=extra_image_name,
            rootfs_partsize=job.get("rootfs_size_mb"), rootfs_filesystem=job.get("filesystem"),
            supports_rootfs_filesystem=bool(job.get("filesystem")) and runner.supports_rootfs_filesystem(),
        )
        stdout, stderr = image.stdout or "", image.stderr or ""
        result = self._store(image, manifest, packages, stdout, stderr)
        return result, stdout, stderr

    def _store(
        self, image: Any, manifest: dict[str, str], packages: list[str], stdout: str, stderr: str
    ) -> dict[str, Any]:
        job, store = self.job, self.context.store
        bin_dir = Path(image.bin_dir)
        raw = dict(image.profiles.raw or {})
        profile_json = dict((raw.get("profiles") or {}).get(job["profile"]) or {})
        if not profile_json:
            raise BuildError("Profile not found in JSON file", stdout, stderr)
        images = [entry for entry in profile_json.get("images") or [] if (bin_dir / entry["name"]).is_file()]
        if not images:
            if "is too big" in stderr or "out of space?" in stderr:
                raise ImageTooBig("Error: Selected packages exceed device storage", stdout, stderr)
            raise BuildError("Error: the ImageBuilder produced no images", stdout, stderr)
        if not records.holds_lease(self.context.sessions, self.build_id, self.owner):
            raise BuildError("Error: build lease lost to another worker", stdout, stderr)
        extras = sorted(path for path in bin_dir.iterdir() if path.is_file() and path.name != "sha256sums"
                        and (path.suffix in (".manifest", ".json") or path.name == "profiles.json"))
        hashes = store.import_files(job["bin_dir"], [bin_dir / entry["name"] for entry in images] + extras)
        store.write_text(job["bin_dir"], "build.log", _build_log(image.build_cmd, stdout, stderr))
        for entry in images:
            served = hashes[entry["name"]]
            entry["sha256_unsigned"] = entry.get("sha256_unsigned") or entry.get("sha256") or served
            entry["sha256"] = served

        result = {key: value for key, value in raw.items() if key != "profiles"}
        result.update(profile_json)
        epoch = int(raw.get("source_date_epoch") or 0)
        result.update(
            id=job["profile"],
            images=images,
            manifest=manifest,
            build_cmd=list(image.build_cmd),
            build_cmd_packages=packages,
            build_at=datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            bin_dir=job["bin_dir"],
        )
        return result


def _keep_failure_log(store: Store, job: Mapping[str, Any], error: AsudError) -> None:
    """Store ``build.log`` of a failed build too (the 2017 API's 500 links to it); never raises."""
    try:
        text = f"{error.detail}\n\n--- stdout ---\n{getattr(error, 'stdout', '')}\n" \
               f"--- stderr ---\n{getattr(error, 'stderr', '')}\n"
        store.write_text(job["bin_dir"], "build.log", text)
    except (OSError, ValueError, KeyError):
        log.warning("could not store the log of a failed build", exc_info=True)


def _build_log(build_cmd: list[str], stdout: str, stderr: str) -> str:
    return f"$ {' '.join(build_cmd)}\n\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}\n"
