"""One build, start to finish: a job (``ValidatedRequest.job()``) → images in the files store.

Sequence (upstream-formats §2.9): ImageBuilder from the verified cache (``download_imagebuilder`` /
``unpack_imagebuilder``) → private workspace → the request's extra keys → verified package indexes →
``make info`` (revision check, ``validate_revision``) → ``make manifest`` (pinned versions check,
``validate_manifest``) → packages prefetched → ``calculate_packages_hash`` → ``make image``
(``building_image``) → ``BIN_DIR/profiles.json`` → files into the store, where ``images[].sha256`` is
recomputed from the stored bytes → the result, with the fields of sysup's worker.

Every line goes to one :class:`~asud.build.logsink.LogSink` (the build's ``build.log``, plus whatever the
caller adds); every stage is reported to it too. A failed build stores its ``build.log`` as well (the 2017
API's 500 links to it). Cancelling :meth:`BuildPipeline.build` stops the running ``make`` (TERM, then KILL)
and fires once the process is gone and the workspace removed; nothing is stored then.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import attrs
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger

from asud.build.imagebuilders import ImageBuilderCache
from asud.build.keys import install_keys, read_usign_keys
from asud.build.logsink import BUILD_LOG, FileLogSink, LogSink, TeeSink
from asud.build.packages import PackageCache, add_repositories, read_repositories
from asud.build.runner import TOO_BIG, ImageBuilderRunner, ImageResult
from asud.build.sandbox import Sandbox, find_sandbox
from asud.build.stages import BuildStage
from asud.build.workspace import make_workspace
from asud.config import Config, DistroSettings
from asud.errors import AsudError, BuildError, ImageTooBig, RevisionMismatch
from asud.store.files import Store
from asud.upstream.fetch import Fetcher
from asud.upstream.usign import PublicKey, parse_public_key

__all__ = ["DEFAULTS_PATH", "BuildOutcome", "BuildPipeline"]

log = Logger()

#: Where a ``defaults`` script goes inside ``FILES`` (the reference's name).
DEFAULTS_PATH = Path("etc/uci-defaults/99-asu-defaults")

#: ``may_store()``: fires ``True`` while this daemon still owns the build (checked before storing files).
StoreCheck = Callable[[], Deferred[bool]]


@attrs.frozen
class BuildOutcome:
    """A finished build: the answer's fields, where its files are, and what ``make image`` printed."""

    result: dict[str, Any]
    bin_dir: str
    stdout: str
    stderr: str


class BuildPipeline:
    """Everything one build needs, made once per daemon and shared by all its builds."""

    def __init__(
        self,
        config: Config,
        *,
        files: Store,
        imagebuilders: ImageBuilderCache,
        packages: PackageCache,
        sandbox: Sandbox,
        logs: FileLogSink,
        reactor: Any = None,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = global_reactor
        self.config = config
        self.files = files
        self.imagebuilders = imagebuilders
        self.packages = packages
        self.sandbox = sandbox
        self.logs = logs
        self.reactor = reactor

    @classmethod
    def from_config(
        cls, config: Config, files: Store, fetcher: Fetcher, *, reactor: Any = None
    ) -> BuildPipeline:
        """The caches, sandbox and log directory under ``config.data_dir`` (``SandboxError`` when bwrap is
        wanted but missing)."""
        build = config.build
        return cls(
            config,
            files=files,
            imagebuilders=ImageBuilderCache(
                config.imagebuilder_dir, fetcher, config.cache.imagebuilder_max_bytes, reactor=reactor,
                unpack_timeout=build.timeout, kill_grace=build.kill_grace,
            ),
            packages=PackageCache(config.package_cache_dir, fetcher, reactor=reactor),
            sandbox=find_sandbox(build.sandbox, build_uid=build.sandbox_uid, reactor=reactor,
                                 kill_grace=build.kill_grace),
            logs=FileLogSink(config.data_dir / "logs"),
            reactor=reactor,
        )

    def check(self) -> Deferred[None]:
        """Fails with ``SandboxError`` when the sandbox cannot start on this host (run once at start)."""
        return self.sandbox.check()

    def close(self) -> Deferred[None]:
        """Stop downloads and unpacks in progress (a stopping daemon)."""
        return self.imagebuilders.close()

    def housekeeping(self) -> Deferred[None]:
        """Trim the caches to ``[cache]``: least recently used package files (``package_max_bytes``) and
        unused ImageBuilders (``imagebuilder_max_bytes``). For the daemon's periodic housekeeping."""
        return Deferred.fromCoroutine(self._housekeeping())

    async def _housekeeping(self) -> None:
        freed = await self.packages.prune(self.config.cache.package_max_bytes)
        evicted = await self.imagebuilders.evict()
        if freed or evicted:
            log.info("build caches trimmed: {freed} bytes of packages, {count} ImageBuilders", freed=freed,
                     count=len(evicted))

    def build(self, job: Mapping[str, Any], *, sink: LogSink | None = None,
              may_store: StoreCheck | None = None) -> Deferred[BuildOutcome]:
        """Build ``job``; fails with an ``AsudError`` (its ``build.log`` stored) or ``CancelledError``.

        ``sink`` receives every line and stage besides ``build.log``; ``may_store`` is asked before the
        files go into the store (``False``: another daemon took the build over).
        """
        return Deferred.fromCoroutine(self._build(dict(job), sink, may_store))

    def _in_thread(self, function: Callable[..., Any], *args: Any) -> Deferred[Any]:
        return deferToThreadPool(self.reactor, self.reactor.getThreadPool(), function, *args)

    async def _build(self, job: dict[str, Any], sink: LogSink | None,
                     may_store: StoreCheck | None) -> BuildOutcome:
        key = job["image_key"]
        lines: LogSink = TeeSink(self.logs, sink) if sink is not None else self.logs
        self.logs.open(key)
        if job.get("log_header"):  # the pool's first line: which asud and which node built it
            lines.line(key, "asud", str(job["log_header"]))
        try:
            outcome = await _Build(self, job, lines, may_store).run()
        except CancelledError:
            self.logs.discard(key)
            raise
        except AsudError as error:
            lines.line(key, "failed", error.detail)
            await self._keep_log(job)
            raise
        except Exception as error:
            log.failure("build {key} failed unexpectedly", key=key)
            lines.line(key, "failed", f"Error: internal server error ({type(error).__name__})")
            await self._keep_log(job)
            raise
        self.logs.close(key)
        return outcome

    async def _keep_log(self, job: Mapping[str, Any]) -> None:
        """Store ``build.log`` of a failed build; never raises."""
        key = job["image_key"]
        self.logs.close(key)
        try:
            await self._in_thread(self.files.import_files, job["bin_dir"], [self.logs.path(key)])
        except (OSError, ValueError, KeyError, AsudError):
            log.failure("could not store the log of failed build {key}", key=key)
        finally:
            self.logs.discard(key)


class _Build:
    """The steps of one build (see the module docstring)."""

    def __init__(self, pipeline: BuildPipeline, job: dict[str, Any], lines: LogSink,
                 may_store: StoreCheck | None) -> None:
        self.pipeline = pipeline
        self.job = job
        self.key: str = job["image_key"]
        self.lines = lines
        self.may_store = may_store
        self.on_line = partial(lines.line, self.key)

    def stage(self, stage: BuildStage) -> None:
        self.lines.status(self.key, stage)

    def note(self, text: str) -> None:
        self.on_line("asud", text)

    async def run(self) -> BuildOutcome:
        job, pipeline = self.job, self.pipeline
        distro: DistroSettings | None = pipeline.config.distros.get(job["distro"])
        if distro is None:
            raise BuildError(f"Unsupported distro: {job['distro']}")
        keys = [parse_public_key(key) for key in distro.public_keys]
        self.stage(BuildStage.DOWNLOAD_IMAGEBUILDER)

        def on_stage(name: str) -> None:
            if name == "download":
                self.note("downloading the ImageBuilder (checked against the signed sha256sums)")
            if name == "unpack":
                self.note("ImageBuilder downloaded and verified; unpacking it")
                self.stage(BuildStage.UNPACK_IMAGEBUILDER)

        progress = _DownloadProgress(self.note)
        self.note(f"ImageBuilder for {job['version_path']} {job['target']}")
        lease = await pipeline.imagebuilders.lease(distro.upstream_url, job["version_path"], job["target"],
                                                   keys, progress, stage=on_stage)
        self.note(f"ImageBuilder {lease.sha256} (verified)")
        try:
            workspace = await make_workspace(lease.path, pipeline.config.workspace_dir,
                                             reactor=pipeline.reactor)
        finally:
            lease.release()
        try:
            return await self._in_workspace(workspace.path, keys)
        finally:
            await workspace.remove(pipeline.reactor)

    async def _in_workspace(self, root: Path, distro_keys: list[PublicKey]) -> BuildOutcome:
        job, pipeline = self.job, self.pipeline
        # Verified indexes of every feed (plus the request's), and the workspace pointed at local copies.
        install_keys(root / "keys", list(job.get("repository_keys") or []))
        repositories = read_repositories(root)
        if job.get("repositories"):
            repositories = add_repositories(repositories, job["repositories"],
                                            mode=job.get("repositories_mode") or "append")
        trusted = [*distro_keys, *read_usign_keys(root / "keys")]
        feeds = await pipeline.packages.prefetch_indexes(repositories, trusted)
        self.note(f"package indexes of {len(feeds)} feeds fetched and verified")
        await pipeline.packages.rewrite_repositories(root, repositories, feeds)
        build = pipeline.config.build
        runner = ImageBuilderRunner(root, pipeline.sandbox, build.timeout, build.output_limit,
                                    on_line=self.on_line)

        self.stage(BuildStage.VALIDATE_REVISION)
        info = await runner.info()
        requested = job.get("requested_version_code") or ""
        if requested and info.revision != requested:
            raise RevisionMismatch(
                f"Error: Received incorrect version {info.revision} (requested {requested})"
            )

        self.stage(BuildStage.VALIDATE_MANIFEST)
        packages = list(job["packages"])
        manifest = dict(await runner.manifest(job["profile"], packages))
        for name, version in (job.get("packages_versions") or {}).items():
            if manifest.get(name) != version:
                raise BuildError(
                    f"Impossible package selection: {name} version not as requested: "
                    f"{version} vs. {manifest.get(name)}"
                )
        self.note(f"prefetching {len(manifest)} packages")
        fetched = await pipeline.packages.prefetch_packages(feeds, manifest)
        count = sum(len(files) for files in fetched.files.values())
        self.note(f"{count} packages prefetched and verified"
                  + (f"; {len(fetched.missing)} from the ImageBuilder itself" if fetched.missing else ""))
        await pipeline.packages.rewrite_repositories(root, repositories, feeds, fetched)

        self.stage(BuildStage.CALCULATE_PACKAGES_HASH)
        extra_image_name = hashlib.sha256(" ".join(sorted(manifest)).encode()).hexdigest()[:12]
        files_dir = None
        if job.get("defaults"):
            files_dir = root / "asud-files"
            script = files_dir / DEFAULTS_PATH
            script.parent.mkdir(parents=True, exist_ok=True)
            script.write_text(job["defaults"], encoding="utf-8")
            script.chmod(0o755)

        self.stage(BuildStage.BUILDING_IMAGE)
        filesystem = job.get("filesystem")
        supports = bool(filesystem) and await runner.supports_rootfs_filesystem()
        argv = runner.image_command(
            job["profile"], packages, bin_dir=root / "asud-bin", files_dir=files_dir,
            extra_image_name=extra_image_name, rootfs_partsize=job.get("rootfs_size_mb"),
            rootfs_filesystem=filesystem, supports_rootfs_filesystem=supports,
        )
        self.on_line("make image", f"$ {' '.join(argv)}")
        image = await runner.image(
            job["profile"], packages, bin_dir=root / "asud-bin", files_dir=files_dir,
            extra_image_name=extra_image_name, rootfs_partsize=job.get("rootfs_size_mb"),
            rootfs_filesystem=filesystem, supports_rootfs_filesystem=supports,
        )
        return await self._store(image, manifest, packages)

    async def _store(self, image: ImageResult, manifest: dict[str, str], packages: list[str]) -> BuildOutcome:
        job, pipeline = self.job, self.pipeline
        stdout, stderr = image.stdout or "", image.stderr or ""
        bin_dir = Path(image.bin_dir)
        raw = dict(image.profiles.raw or {})
        profile_json = dict((raw.get("profiles") or {}).get(job["profile"]) or {})
        if not profile_json:
            raise BuildError("Profile not found in JSON file", stdout, stderr)
        images = [
            entry for entry in profile_json.get("images") or [] if (bin_dir / entry["name"]).is_file()
        ]
        if not images:
            if "is too big" in stderr or "out of space?" in stderr:
                raise ImageTooBig(TOO_BIG, stdout, stderr)
            raise BuildError("Error: the ImageBuilder produced no images", stdout, stderr)
        if self.may_store is not None and not await self.may_store():
            raise BuildError("Error: build lease lost to another worker", stdout, stderr)
        extras = sorted(path for path in bin_dir.iterdir() if path.is_file() and path.name != "sha256sums"
                        and (path.suffix in (".manifest", ".json") or path.name == "profiles.json"))
        stored = [bin_dir / entry["name"] for entry in images] + extras
        self.note(f"storing {len(stored)} files")
        hashes = await pipeline._in_thread(pipeline.files.import_files, job["bin_dir"], stored)
        for entry in images:
            served = hashes[entry["name"]]
            entry["sha256_unsigned"] = entry.get("sha256_unsigned") or entry.get("sha256") or served
            entry["sha256"] = served
        self.note(f"stored {len(images)} images in /store/{job['bin_dir']}/")
        pipeline.logs.close(self.key)
        log_path = pipeline.logs.path(self.key)
        await pipeline._in_thread(_store_log, pipeline.files, job["bin_dir"], log_path)
        pipeline.logs.discard(self.key)

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
        return BuildOutcome(result, job["bin_dir"], stdout, stderr)


class _DownloadProgress:
    """Turns the download's byte counts into a line every 10 % (or every 16 MiB without a size)."""

    def __init__(self, note: Callable[[str], None]) -> None:
        self.note = note
        self.shown = 0

    def __call__(self, done: int, total: int | None) -> None:
        if total:
            tenth = done * 10 // total
            if tenth > self.shown:
                self.shown = tenth
                self.note(f"downloading the ImageBuilder: {tenth * 10} % of {total / 1048576:.1f} MiB")
        elif done // (16 << 20) > self.shown:
            self.shown = done // (16 << 20)
            self.note(f"downloading the ImageBuilder: {done / 1048576:.0f} MiB")


def _store_log(files: Store, bin_dir: str, path: Path) -> None:
    """Put the finished ``build.log`` into ``bin_dir`` (blocking: runs in a thread)."""
    assert path.name == BUILD_LOG
    files.import_files(bin_dir, [path])
