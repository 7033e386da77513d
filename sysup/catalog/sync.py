"""Keep the catalog in step with a distribution's download server.

Walk: ``/.versions.json`` → each release from ``min_branch`` on (plus ``SNAPSHOT`` and any
``XX.YY-SNAPSHOT`` present upstream) → ``.targets.json`` → per target the signed ``sha256sums``,
``profiles.json`` (its hash must match the signed list), the target package index and its kmods →
per architecture the feeds ``base packages luci routing telephony``.

Trust: a ``sha256sums`` is used only when its ``.sig`` verifies with one of the distribution's keys;
opkg ``Packages`` only with a verifying ``Packages.sig``; ``profiles.json`` and apk ``index.json`` only
when their sha256 is the one the verified ``sha256sums`` lists. Anything else is refused
(``SignatureError``) and nothing derived from it is stored.

Every request is conditional (``sysup.catalog.conditional``), so a re-sync with nothing changed is a
round of 304s and writes nothing. Targets are fetched in parallel and written one transaction each.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sysup.catalog import persist
from sysup.catalog.conditional import ConditionalFetcher, Fetched, FetcherLike, TransferCounters
from sysup.catalog.models import Branch, PackageFeed, Target, Version
from sysup.catalog.package_changes import branch_off_rev_for
from sysup.config import DistroSettings
from sysup.errors import SignatureError, SysupError
from sysup.upstream.errors import UpstreamNotFound
from sysup.upstream.index_json import parse_index_json
from sysup.upstream.packages_index import parse_packages
from sysup.upstream.profiles_json import parse_profiles_json
from sysup.upstream.records import PackageRecord
from sysup.upstream.sha256sums import parse_sha256sums
from sysup.upstream.targets_json import parse_targets_json
from sysup.upstream.usign import PublicKey, parse_public_key, verify
from sysup.upstream.version_order import branch_of, release_key
from sysup.upstream.versions_json import parse_versions_json

log = logging.getLogger(__name__)

#: Architecture feeds read for every version (``packages/<arch>/<feed>/``); a 404 means "not built".
ARCH_FEEDS = ("base", "packages", "luci", "routing", "telephony")
#: Parallel fetches of one sync; the download server is the bottleneck, not the CPU.
FETCH_WORKERS = 8

#: ``progress(label, done, total)`` after each target of a version.
ProgressCallback = Callable[[str, int, int], None]


@dataclass
class SyncReport:
    """What one ``sync_distro`` did."""

    distro: str
    requests: int = 0
    not_modified: int = 0
    #: Requests answered 404: optional files (feeds, ``XX.YY-SNAPSHOT``) that do not exist.
    not_found: int = 0
    bytes: int = 0
    versions: int = 0
    targets: int = 0
    targets_updated: int = 0
    profiles: int = 0
    feeds_updated: int = 0
    packages: int = 0
    marked_absent: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True, slots=True)
class _VersionPlan:
    version: str
    branch: str
    path: str
    snapshot: bool


def sync_distro(
    session_factory: sessionmaker[Session],
    distro_name: str,
    distro: DistroSettings,
    fetcher: FetcherLike,
    *,
    progress: ProgressCallback | None = None,
) -> SyncReport:
    """Bring the catalog of ``distro_name`` up to date with its download server."""
    report = SyncReport(distro=distro_name)
    counters = TransferCounters()
    upstream = distro.upstream_url.rstrip("/")
    if not distro.public_keys:
        report.errors.append(f"{distro_name}: no public_keys configured; refusing to trust its upstream")
        return report
    keys = [parse_public_key(text) for text in distro.public_keys]
    files = ConditionalFetcher(session_factory, fetcher, upstream + "/", counters)
    run = _Sync(session_factory, distro_name, distro, files, keys, report, progress)
    try:
        run.run(upstream)
    except SysupError as error:
        report.errors.append(f"{distro_name}: {error.detail}")
        log.warning("sync of %s failed: %s", distro_name, error.detail)
    report.requests, report.not_modified = counters.requests, counters.not_modified
    report.not_found, report.bytes = counters.not_found, counters.bytes
    return report


class _Sync:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        distro_name: str,
        distro: DistroSettings,
        files: ConditionalFetcher,
        keys: list[PublicKey],
        report: SyncReport,
        progress: ProgressCallback | None,
    ) -> None:
        self.session_factory = session_factory
        self.distro_name = distro_name
        self.distro = distro
        self.files = files
        self.keys = keys
        self.report = report
        self.progress = progress

    # -- versions ---------------------------------------------------------------------------------

    def run(self, upstream: str) -> None:
        versions_file = self.files.get(f"{upstream}/.versions.json", keep=True)
        assert versions_file.content is not None
        document = parse_versions_json(versions_file.content)
        plans = self._plan(upstream, document.versions_list, document.upcoming_version)
        seen: set[str] = set()
        branches: dict[str, _VersionPlan] = {}
        for plan in plans:
            if self._sync_version(upstream, plan):
                seen.add(plan.version)
                branches.setdefault(plan.branch, plan)
        with self.session_factory.begin() as session:
            persist.store_file_states(session, [versions_file.pending] if versions_file.pending else [])
            for name in branches:
                persist.write_branch(
                    session,
                    self.distro_name,
                    name=name,
                    path="snapshots" if name == "SNAPSHOT" else "releases/{version}",
                    snapshot=name == "SNAPSHOT",
                    enabled=self._branch_wanted(name),
                    branch_off_rev=None if name == "SNAPSHOT" else branch_off_rev_for(self.distro, name),
                )
            gone = session.scalars(
                select(Version.id).where(
                    Version.distro == self.distro_name,
                    Version.present.is_(True),
                    Version.version.not_in(seen),
                )
            ).all()
            self.report.marked_absent += persist.mark_absent(session, Version, list(gone))
            gone_branches = session.scalars(
                select(Branch.id).where(
                    Branch.distro == self.distro_name, Branch.present.is_(True), Branch.name.not_in(branches)
                )
            ).all()
            self.report.marked_absent += persist.mark_absent(session, Branch, list(gone_branches))

    def _branch_wanted(self, branch: str) -> bool:
        return not self.distro.branches or branch in self.distro.branches

    def _plan(self, upstream: str, versions_list: tuple[str, ...], upcoming: str) -> list[_VersionPlan]:
        floor = release_key(self.distro.min_branch)
        releases = [v for v in dict.fromkeys([*versions_list, upcoming]) if v and "SNAPSHOT" not in v.upper()]
        releases = [
            v for v in releases if release_key(branch_of(v)) >= floor and self._branch_wanted(branch_of(v))
        ]
        releases.sort(key=release_key, reverse=True)
        plans = [_VersionPlan(v, branch_of(v), f"releases/{v}", False) for v in releases]
        if self.distro.snapshots:
            for branch in sorted({plan.branch for plan in plans}, key=release_key, reverse=True):
                version = f"{branch}-SNAPSHOT"
                plans.append(_VersionPlan(version, branch, f"releases/{version}", True))
            if self._branch_wanted("SNAPSHOT"):
                plans.append(_VersionPlan("SNAPSHOT", "SNAPSHOT", "snapshots", True))
        return plans

    def _sync_version(self, upstream: str, plan: _VersionPlan) -> bool:
        """Sync one version; ``False`` when it is not (or no longer) upstream."""
        base = f"{upstream}/{plan.path}"
        try:
            targets_file = self.files.get(f"{base}/.targets.json", keep=True)
        except UpstreamNotFound:
            if not plan.snapshot:
                self.report.errors.append(f"{plan.version}: {base}/.targets.json not found")
            return False
        assert targets_file.content is not None
        targets = parse_targets_json(targets_file.content)
        self.report.versions += 1
        with self.session_factory() as session:
            stored_targets = {
                row.target: row
                for row in session.scalars(
                    select(Target).where(Target.distro == self.distro_name, Target.version == plan.version)
                )
            }
            stored_feeds = {
                (row.scope, row.key, row.feed): row
                for row in session.scalars(
                    select(PackageFeed).where(
                        PackageFeed.distro == self.distro_name, PackageFeed.version == plan.version
                    )
                )
            }
            session.expunge_all()
        collector = _Collector(self.files, self.keys, base, stored_targets, stored_feeds)
        managers: list[str] = []
        absent: list[int] = []
        names = sorted(targets)
        with ThreadPoolExecutor(FETCH_WORKERS) as pool:
            futures = {name: pool.submit(collector.target, name) for name in names}
            for done, name in enumerate(names, 1):
                try:
                    update = futures[name].result()
                except UpstreamNotFound as error:
                    if name in stored_targets and stored_targets[name].present:
                        absent.append(stored_targets[name].id)
                    self.report.errors.append(f"{plan.version} {name}: {error.detail}")
                    continue
                except SysupError as error:
                    self.report.errors.append(f"{plan.version} {name}: {error.detail}")
                    log.warning("sync %s %s: %s", plan.version, name, error.detail)
                    continue
                finally:
                    if self.progress:
                        self.progress(f"{self.distro_name} {plan.version}", done, len(names))
                self.report.targets += 1
                managers.append(update.package_manager)
                if not update.empty:
                    self._write_target(plan.version, update)
            arches = sorted(set(targets.values()))
            manager = managers[0] if managers else "opkg"
            arch_futures = {arch: pool.submit(collector.arch, arch, manager) for arch in arches}
            for arch in arches:
                try:
                    arch_update = arch_futures[arch].result()
                except SysupError as error:
                    self.report.errors.append(f"{plan.version} packages/{arch}: {error.detail}")
                    continue
                if not arch_update.empty:
                    self._write_target(plan.version, arch_update, count_target=False)
        with self.session_factory.begin() as session:
            stored_manager = session.scalars(
                select(Version.package_manager).where(
                    Version.distro == self.distro_name, Version.version == plan.version
                )
            ).one_or_none()
            persist.write_version(
                session,
                self.distro_name,
                version=plan.version,
                branch=plan.branch,
                path=plan.path,
                snapshot=plan.snapshot,
                package_manager=managers[0] if managers else stored_manager or "opkg",
            )
            absent += [row.id for name, row in stored_targets.items() if name not in targets and row.present]
            self.report.marked_absent += persist.mark_absent(session, Target, absent)
            persist.store_file_states(session, [targets_file.pending] if targets_file.pending else [])
        return True

    def _write_target(self, version: str, update: persist.TargetUpdate, *, count_target: bool = True) -> None:
        with self.session_factory.begin() as session:
            counts = persist.write_target(session, self.distro_name, version, update)
        self.report.targets_updated += int(count_target and update.document is not None)
        self.report.profiles += counts.profiles
        self.report.packages += counts.packages
        self.report.feeds_updated += counts.feeds


class _Collector:
    """Fetches and verifies one version's files; runs in worker threads, never writes."""

    def __init__(
        self,
        files: ConditionalFetcher,
        keys: list[PublicKey],
        base: str,
        stored_targets: dict[str, Target],
        stored_feeds: dict[tuple[str, str, str], PackageFeed],
    ) -> None:
        self.files = files
        self.keys = keys
        self.base = base
        self.stored_targets = stored_targets
        self.stored_feeds = stored_feeds

    def _signed_sums(self, url: str, update: persist.TargetUpdate, force: bool) -> dict[str, str]:
        """A verified ``sha256sums`` (path → hex) and its ``.sig``."""
        sums = self.files.get(url, keep=True, force=force)
        sig = self.files.get(url + ".sig", keep=True, force=force)
        assert sums.content is not None and sig.content is not None
        if sums.changed or sig.changed or force:
            try:
                verify(sums.content, sig.content.decode("utf-8", "replace"), self.keys)
            except SignatureError as error:
                raise SignatureError(f"{url}: {error.detail}") from error
        update.files += [f.pending for f in (sums, sig) if f.pending]
        return parse_sha256sums(sums.content.decode("utf-8"))

    def target(self, name: str) -> persist.TargetUpdate:
        update = persist.TargetUpdate(target=name)
        stored = self.stored_targets.get(name)
        force = stored is None or not stored.present
        base = f"{self.base}/targets/{name}"
        sums = self._signed_sums(f"{base}/sha256sums", update, force)
        expected = sums.get("profiles.json")
        if expected is None:
            raise SignatureError(f"{base}/sha256sums does not list profiles.json")
        profiles = self.files.get(f"{base}/profiles.json", force=force)
        if profiles.changed:
            if profiles.sha256 != expected:
                raise SignatureError(
                    f"{base}/profiles.json has sha256 {profiles.sha256}, "
                    f"but the signed sha256sums says {expected}"
                )
            assert profiles.content is not None
            update.document = parse_profiles_json(profiles.content)
            update.profiles_sha256 = profiles.sha256
            kernel = update.document.linux_kernel
            kmods_dir = kernel.kmods_dir if kernel else None
            default_packages = update.document.default_packages
        else:
            assert stored is not None
            if stored.profiles_sha256 != expected:
                raise SignatureError(f"{base}/profiles.json no longer matches the signed sha256sums")
            kmods_dir = (
                "{version}-{release}-{vermagic}".format(**stored.linux_kernel)
                if stored.linux_kernel
                else None
            )
            default_packages = tuple(stored.default_packages)
        if profiles.pending:
            update.files.append(profiles.pending)
        update.package_manager = _package_manager(sums, default_packages)
        update.revive = stored is not None and not stored.present
        feeds = [("packages", "packages")]
        if kmods_dir:
            feeds.append(("kmods", f"kmods/{kmods_dir}"))
        for feed, path in feeds:
            self._feed(
                update, "target", name, feed, f"{base}/{path}/", update.package_manager, sums, path + "/"
            )
        return update

    def arch(self, arch: str, manager: str) -> persist.TargetUpdate:
        """The feeds of one architecture (a ``TargetUpdate`` without document)."""
        update = persist.TargetUpdate(target=arch, package_manager=manager)
        base = f"{self.base}/packages/{arch}"
        sums: dict[str, str] = {}
        if manager == "apk":
            stored = [
                row for (scope, key, _), row in self.stored_feeds.items() if scope == "arch" and key == arch
            ]
            sums = self._signed_sums(f"{base}/sha256sums", update, force=not stored)
        for feed in ARCH_FEEDS:
            self._feed(update, "arch", arch, feed, f"{base}/{feed}/", manager, sums, f"{feed}/")
        return update

    def _feed(
        self,
        update: persist.TargetUpdate,
        scope: str,
        key: str,
        feed: str,
        url: str,
        manager: str,
        sums: dict[str, str],
        sums_prefix: str,
    ) -> None:
        stored = self.stored_feeds.get((scope, key, feed))
        force = stored is None or not stored.present
        try:
            if manager == "apk":
                result = self._apk_index(url, sums, sums_prefix, force)
            else:
                result = self._opkg_index(url, force)
        except UpstreamNotFound:
            if stored is not None and stored.present:
                update.feeds.append(persist.FeedUpdate(scope, key, feed, url, records=None))
            return
        fetched, records, pending = result
        update.files += pending
        if records is not None:
            detail = "names" if manager == "apk" else "full"
            update.feeds.append(persist.FeedUpdate(scope, key, feed, url, fetched.sha256, detail, records))

    def _opkg_index(self, url: str, force: bool) -> tuple[Fetched, list[PackageRecord] | None, list]:
        index = self.files.get(url + "Packages", force=force)
        sig = self.files.get(url + "Packages.sig", keep=True, force=force)
        if not index.changed and not sig.changed:
            return index, None, []
        if index.content is None:  # the signature changed but the index answered 304: read it again
            index = self.files.get(url + "Packages", force=True)
        assert index.content is not None and sig.content is not None
        try:
            verify(index.content, sig.content.decode("utf-8", "replace"), self.keys)
        except SignatureError as error:
            raise SignatureError(f"{url}Packages: {error.detail}") from error
        records = parse_packages(index.content.decode("utf-8"))
        return index, records, [f.pending for f in (index, sig) if f.pending]

    def _apk_index(
        self, url: str, sums: dict[str, str], prefix: str, force: bool
    ) -> tuple[Fetched, list[PackageRecord] | None, list]:
        index = self.files.get(url + "index.json", force=force)
        if not index.changed:
            return index, None, []
        expected = sums.get(prefix + "index.json")
        if expected != index.sha256:
            raise SignatureError(
                f"{url}index.json does not match the signed sha256sums ({expected or 'not listed'})"
            )
        assert index.content is not None
        parsed = parse_index_json(index.content)
        records = [PackageRecord(name=name, version=version) for name, version in parsed.packages.items()]
        return index, records, [index.pending] if index.pending else []


def _package_manager(sums: dict[str, str], default_packages: tuple[str, ...]) -> str:
    """apk when the target has an apk index (or defaults pull in apk), else opkg."""
    if "packages/packages.adb" in sums:
        return "apk"
    if "packages/Packages" in sums:
        return "opkg"
    return "apk" if any(name.startswith("apk-") for name in default_packages) else "opkg"
