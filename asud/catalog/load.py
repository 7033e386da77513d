"""Read each distribution's download server into catalog data (``load_catalog``).

Walk: ``/.versions.json`` → each release from ``min_branch`` on (plus ``SNAPSHOT`` and the
``XX.YY-SNAPSHOT`` of each branch, when upstream has them) → ``.targets.json`` → per target the signed
``sha256sums`` and ``profiles.json`` → per architecture its signed ``sha256sums`` (what names the content
of its feeds). Package feeds themselves are read on first use (``asud.catalog.feeds``), or here when
``feeds=True`` (``asud sync`` does that, to count and check every index).

Trust (``asud.catalog.trust``): nothing unverified is used; a target or architecture whose files do not
verify is reported with the URL and left out — or, on a refresh, kept as the previous load verified it.

Every file goes through the fetcher's on-disk ETag cache, and a target whose signed list is unchanged
since the previous load is reused as is: a refresh with nothing new upstream is one conditional request
per version, target and architecture, and parses nothing. When the server cannot be reached, the cached
bytes are used (and verified) instead and the report says so: a daemon restarted during an outage of its
download server still knows what it knew.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import attrs
from twisted.internet.defer import Deferred, FirstError, gatherResults
from twisted.internet.threads import deferToThread

from asud.catalog.catalog import Catalog
from asud.catalog.data import (
    ARCH_FEEDS,
    ArchData,
    BranchData,
    DistroData,
    TargetData,
    VersionData,
    arch_group,
    target_data,
)
from asud.catalog.feeds import FeedCache
from asud.catalog.info import VersionInfo
from asud.catalog.report import DistroReport, SkippedRelease, SyncReport, VersionReport
from asud.catalog.trust import sha256, verified_profiles, verified_sums
from asud.config import Config, DistroSettings
from asud.errors import AsudError, SignatureError
from asud.upstream.errors import UpstreamNotFound
from asud.upstream.fetch import Fetcher
from asud.upstream.records import PackageManager
from asud.upstream.targets_json import parse_targets_json
from asud.upstream.usign import PublicKey, parse_public_key
from asud.upstream.version_order import branch_of, release_key
from asud.upstream.versions_json import parse_versions_json

__all__ = ["ProgressCallback", "load_catalog"]

_T = TypeVar("_T")

#: ``progress(label, done, total)`` after each target of a version.
ProgressCallback = Callable[[str, int, int], None]


def load_catalog(
    config: Config,
    fetcher: Fetcher,
    *,
    previous: Catalog | None = None,
    feeds: bool = False,
    distros: Sequence[str] | None = None,
    progress: ProgressCallback | None = None,
) -> Deferred[tuple[Catalog, SyncReport]]:
    """Read every configured distribution (or those named in ``distros``) into a new ``Catalog``.

    With ``previous``, unchanged files are not parsed again, data that fails verification now is kept as
    it was, and ``previous`` itself is returned when nothing changed (``report.changed`` is false).
    ``feeds=True`` also reads, verifies and counts every package feed (per version in the report).
    A distribution that cannot be read is a problem in the report, never an exception.
    """
    return Deferred.fromCoroutine(_load(config, fetcher, previous, feeds, distros, progress))


async def _load(config: Config, fetcher: Fetcher, previous: Catalog | None, feeds: bool,
                names: Sequence[str] | None, progress: ProgressCallback | None) -> tuple[Catalog, SyncReport]:
    wanted = list(config.distros) if names is None else [name.lower() for name in names]
    loaders = [
        _DistroLoader(name, config.distros[name], fetcher, previous.data(name) if previous else None,
                      progress)
        for name in wanted if name in config.distros
    ]
    results = await _gather([Deferred.fromCoroutine(loader.run()) for loader in loaders])
    data = {name: previous.data(name) for name in config.distros} if previous else {}
    data.update({loader.name: result for loader, result in zip(loaders, results, strict=True)})
    cache = previous.feeds if previous else FeedCache(
        lambda url: fetcher.fetch_bytes(url, stale_ok=True), config.catalog.feed_cache_entries
    )
    present = {name: value for name, value in data.items() if value is not None}
    catalog = Catalog(present, config.distros, cache, generation=previous.generation + 1 if previous else 1)
    report = SyncReport([loader.report for loader in loaders])
    if previous is not None and catalog.fingerprint() == previous.fingerprint():
        catalog, report.changed = previous, False
    if feeds:
        for loader in loaders:
            await loader.count_packages(catalog)
    return catalog, report


async def _gather(loads: list[Deferred[_T]]) -> list[_T]:
    """``gatherResults`` whose failure is the error itself (a cancellation stays a ``CancelledError``).

    The loads here report upstream problems in the report, so a failure is a cancellation or a bug."""
    try:
        return await gatherResults(loads, consumeErrors=True)
    except FirstError as error:
        error.subFailure.raiseException()
        raise  # not reached


@attrs.frozen
class _Plan:
    version: str
    branch: str
    path: str
    snapshot: bool


def _reason(error: Exception) -> str:
    return error.detail if isinstance(error, AsudError) else f"{type(error).__name__}: {error}"


class _DistroLoader:
    """One distribution's walk; collects its ``DistroReport``."""

    def __init__(self, name: str, settings: DistroSettings, fetcher: Fetcher, previous: DistroData | None,
                 progress: ProgressCallback | None) -> None:
        self.name = name
        self.settings = settings
        self.fetcher = fetcher
        self.previous = previous
        self.progress = progress
        self.upstream = settings.upstream_url.rstrip("/")
        self.report = DistroReport(distro=name, upstream=self.upstream)
        self.keys: tuple[PublicKey, ...] = ()
        self._stale_error = ""

    # -- requests ----------------------------------------------------------------------------------

    def get(self, url: str) -> Deferred[bytes]:
        """The body at ``url`` through the fetcher's cache, counted in the report."""
        return Deferred.fromCoroutine(self._get(url))

    async def _get(self, url: str) -> bytes:
        self.report.requests += 1
        try:
            result = await self.fetcher.fetch_cached(url, stale_ok=True)
        except UpstreamNotFound:
            self.report.not_found += 1
            raise
        self.report.not_modified += int(result.not_modified)
        self.report.bytes += result.transferred
        if result.stale:
            self.report.stale += 1
            self._stale_error = self._stale_error or result.stale
        return result.body

    async def _optional(self, url: str) -> bytes | None:
        try:
            return await self.get(url)
        except UpstreamNotFound:
            return None

    # -- versions ----------------------------------------------------------------------------------

    async def run(self) -> DistroData | None:
        try:
            return await self._run()
        finally:
            if self.report.stale:
                self.report.errors.append(
                    f"{self.upstream} could not be reached: {self.report.stale} files were read from the "
                    f"on-disk cache instead (first error: {self._stale_error})"
                )

    async def _run(self) -> DistroData | None:
        if not self.settings.public_keys:
            self.report.errors.append(
                f"{self.name}: no public_keys configured; refusing to trust its upstream")
            return None
        try:
            self.keys = tuple(parse_public_key(text) for text in self.settings.public_keys)
            versions_body = await self.get(f"{self.upstream}/.versions.json")
            document = parse_versions_json(versions_body)
        except (AsudError, ValueError) as error:
            self.report.errors.append(f"{self.name}: {_reason(error)}")
            return self.previous
        plans = self._plan(document.versions_list, document.upcoming_version)
        loaded = await _gather([Deferred.fromCoroutine(self._version(plan)) for plan in plans])
        order = {plan.version: position for position, plan in enumerate(plans)}
        self.report.versions.sort(key=lambda report: order[report.version])
        versions: dict[str, VersionData] = {}
        branches: dict[str, BranchData] = {}
        for plan, version in zip(plans, loaded, strict=True):
            if version is None:
                continue
            versions[plan.version] = version
            branches.setdefault(plan.branch, BranchData(
                name=plan.branch,
                path="snapshots" if plan.branch == "SNAPSHOT" else "releases/{version}",
                snapshot=plan.branch == "SNAPSHOT",
                enabled=self._branch_wanted(plan.branch),
            ))
        if self.previous is not None:
            self.report.gone += len(set(self.previous.versions) - set(versions))
            self.report.gone += len(set(self.previous.branches) - set(branches))
        return DistroData(self.name, self.upstream, versions, branches, sha256(versions_body))

    def _branch_wanted(self, branch: str) -> bool:
        return not self.settings.branches or branch in self.settings.branches

    def _plan(self, versions_list: tuple[str, ...], upcoming: str) -> list[_Plan]:
        floor = release_key(self.settings.min_branch)
        releases = []
        for version in dict.fromkeys([*versions_list, upcoming]):
            if not version or "SNAPSHOT" in version.upper():
                continue
            url = f"{self.upstream}/releases/{version}/"
            branch = branch_of(version)
            if release_key(branch) < floor:
                reason = f"below min_branch {self.settings.min_branch}"
                self.report.skipped.append(SkippedRelease(version, url, reason))
            elif not self._branch_wanted(branch):
                reason = f"branch {branch} is not among the configured branches"
                self.report.skipped.append(SkippedRelease(version, url, reason))
            else:
                releases.append(version)
        releases.sort(key=release_key, reverse=True)
        plans = [_Plan(v, branch_of(v), f"releases/{v}", False) for v in releases]
        if self.settings.snapshots:
            for branch in sorted({plan.branch for plan in plans}, key=release_key, reverse=True):
                version = f"{branch}-SNAPSHOT"
                plans.append(_Plan(version, branch, f"releases/{version}", True))
            if self._branch_wanted("SNAPSHOT"):
                plans.append(_Plan("SNAPSHOT", "SNAPSHOT", "snapshots", True))
        return plans

    async def _version(self, plan: _Plan) -> VersionData | None:
        """One version's data; ``None`` when it is not (or no longer) upstream."""
        base = f"{self.upstream}/{plan.path}"
        previous = self.previous.versions.get(plan.version) if self.previous else None
        try:
            targets_body = await self.get(f"{base}/.targets.json")
            targets = parse_targets_json(targets_body)
        except UpstreamNotFound:
            if not plan.snapshot:
                self.report.errors.append(f"{plan.version}: {base}/.targets.json not found")
            return None
        except (AsudError, ValueError) as error:
            self.report.errors.append(f"{plan.version}: {_reason(error)}")
            return previous
        report = VersionReport(plan.version, f"{base}/")
        self.report.versions.append(report)
        names = sorted(targets)
        done = 0

        async def one_target(name: str) -> TargetData | None:
            nonlocal done
            try:
                return await self._target_checked(plan, base, name, previous, report)
            finally:
                done += 1
                if self.progress is not None:
                    self.progress(f"{self.name} {plan.version}", done, len(names))

        found = await _gather([Deferred.fromCoroutine(one_target(name)) for name in names])
        kept = {name: data for name, data in zip(names, found, strict=True) if data is not None}
        managers = [kept[name].info.package_manager for name in names if name in kept]
        manager: PackageManager = managers[0] if managers else (
            previous.info.package_manager if previous else "opkg")
        arch_names = sorted(set(targets.values()))
        arches = await _gather([
            Deferred.fromCoroutine(self._arch_checked(plan, base, arch, manager, previous))
            for arch in arch_names
        ])
        if previous is not None:
            self.report.gone += len(set(previous.targets) - set(kept))
        return VersionData(
            info=VersionInfo(self.name, plan.version, plan.branch, plan.path, plan.snapshot, manager),
            targets_sha256=sha256(targets_body),
            targets=kept,
            arches={arch: data for arch, data in zip(arch_names, arches, strict=True) if data is not None},
        )

    # -- targets -----------------------------------------------------------------------------------

    async def _target_checked(self, plan: _Plan, base: str, name: str, version: VersionData | None,
                              report: VersionReport) -> TargetData | None:
        """The target, or on failure the previous load's data of it (``None`` if gone upstream)."""
        previous = version.targets.get(name) if version else None
        try:
            data, changed = await self._target(plan, base, name, previous)
        except UpstreamNotFound as error:
            self.report.errors.append(f"{plan.version} {name}: {error.detail}")
            return None
        except (AsudError, ValueError) as error:
            # A bad file costs this target only (ValueError: undecodable or malformed text).
            self.report.errors.append(f"{plan.version} {name}: {_reason(error)}")
            return previous
        report.targets += 1
        report.targets_changed += int(changed)
        report.profiles += len(data.info.profiles)
        return data

    async def _target(self, plan: _Plan, base: str, name: str,
                      previous: TargetData | None) -> tuple[TargetData, bool]:
        url = f"{base}/targets/{name}"
        sums_url = f"{url}/sha256sums"
        sums = await self.get(sums_url)
        digest = sha256(sums)
        if previous is not None and previous.sums_sha256 == digest:
            # The very bytes verified by the previous load, and the signed list names every file below
            # the target (profiles.json, packages/, kmods/<kver>/): nothing changed, nothing to read.
            return previous, False
        signature = await self.get(sums_url + ".sig")
        listed = verified_sums(sums_url, sums, signature, self.keys)
        expected = listed.get("profiles.json")
        if expected is None:
            raise SignatureError(f"{sums_url} does not list profiles.json")
        if previous is not None and previous.profiles_sha256 == expected:
            document = previous.info.document()  # only the packages changed
        else:
            profiles = await self.get(f"{url}/profiles.json")
            document, _ = await deferToThread(verified_profiles, f"{url}/profiles.json", profiles, expected)
        data = await deferToThread(
            target_data, distro=self.name, version=plan.version, target=name, url=url, document=document,
            sums=listed, sums_sha256=digest, profiles_sha256=expected, keys=self.keys,
        )
        return data, True

    # -- architectures -----------------------------------------------------------------------------

    async def _arch_checked(self, plan: _Plan, base: str, arch: str, manager: PackageManager,
                            version: VersionData | None) -> ArchData | None:
        previous = version.arches.get(arch) if version else None
        try:
            return await self._arch(plan, base, arch, manager, previous)
        except (AsudError, ValueError) as error:
            self.report.errors.append(f"{plan.version} packages/{arch}: {_reason(error)}")
            return previous

    async def _arch(self, plan: _Plan, base: str, arch: str, manager: PackageManager,
                    previous: ArchData | None) -> ArchData:
        url = f"{base}/packages/{arch}"
        sums_url = f"{url}/sha256sums"
        try:
            sums: bytes | None = await self.get(sums_url)
        except UpstreamNotFound:
            if manager == "apk":
                raise
            sums = None  # an opkg feed directory without a signed list: each feed's Packages.sig decides
        listed: dict[str, str] | None = None
        if sums is not None:
            fingerprint = sha256(sums)
            unchanged = previous is not None and previous.fingerprint == fingerprint
            if not unchanged:
                signature = await self.get(sums_url + ".sig")
                listed = verified_sums(sums_url, sums, signature, self.keys)
        else:
            signatures = await _gather([
                Deferred.fromCoroutine(self._optional(f"{url}/{feed}/Packages.sig")) for feed in ARCH_FEEDS
            ])
            fingerprint = "sigs:" + ",".join(sha256(sig) if sig is not None else "-" for sig in signatures)
            unchanged = previous is not None and previous.fingerprint == fingerprint
        if unchanged and previous is not None and previous.feeds.manager == manager:
            return previous
        if unchanged and previous is not None:
            listed = dict(previous.feeds.sums) if previous.feeds.sums is not None else None
        return arch_group(distro=self.name, version=plan.version, arch=arch, url=url, manager=manager,
                          fingerprint=fingerprint, sums=listed, keys=self.keys)

    # -- package feeds (``feeds=True``) ------------------------------------------------------------

    async def count_packages(self, catalog: Catalog) -> None:
        """Load every feed group of every version through ``catalog``'s cache, count the packages and
        report each group that fails, and each version left with none, as a problem."""
        distro = catalog.data(self.name)
        if distro is None:
            return
        for report in self.report.versions:
            version = distro.versions.get(report.version)
            if version is None:
                continue
            groups = [(f"{name} packages", data.feeds) for name, data in sorted(version.targets.items())]
            groups += [(f"packages/{arch}", data.feeds) for arch, data in sorted(version.arches.items())]
            # Each group's count, or the exception that refused it (as a value, not a failure).
            results: list[int | Exception] = await _gather([
                catalog.feeds.group(group, get=self.get).addCallbacks(
                    lambda loaded: loaded.packages, lambda failure: failure.value)
                for _, group in groups
            ])
            report.packages = 0
            for (label, _), result in zip(groups, results, strict=True):
                if isinstance(result, int):
                    report.packages += result
                else:
                    self.report.errors.append(f"{report.version} {label}: {_reason(result)}")
            if report.packages == 0:
                self.report.errors.append(
                    f"{report.version}: 0 packages — no usable package index below {report.url}")
