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

from asud.errors import AsudError
from asud.upstream.errors import UpstreamNotFound
from asud.upstream.targets_json import parse_targets_json
from asud.upstream.usign import PublicKey, parse_public_key
from asud.upstream.version_order import branch_of, release_key
from asud.upstream.versions_json import parse_versions_json
from sysup.catalog import persist
from sysup.catalog.collect import Collector
from sysup.catalog.conditional import ConditionalFetcher, FetcherLike, TransferCounters
from sysup.catalog.models import Branch, PackageFeed, Target, Version
from sysup.catalog.package_changes import branch_off_rev_for
from sysup.config import DistroSettings

log = logging.getLogger(__name__)

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
    try:
        keys = [parse_public_key(text) for text in distro.public_keys]
        files = ConditionalFetcher(session_factory, fetcher, upstream + "/", counters)
        _Sync(session_factory, distro_name, distro, files, keys, report, progress).run(upstream)
    except (AsudError, ValueError) as error:
        report.errors.append(f"{distro_name}: {_reason(error)}")
        log.warning("sync of %s failed: %s", distro_name, _reason(error))
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
        collector = Collector(self.files, self.keys, base, stored_targets, stored_feeds)
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
                except (AsudError, ValueError) as error:
                    # A bad file costs this target only (ValueError: undecodable or malformed text).
                    self.report.errors.append(f"{plan.version} {name}: {_reason(error)}")
                    log.warning("sync %s %s: %s", plan.version, name, _reason(error))
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
                except (AsudError, ValueError) as error:
                    self.report.errors.append(f"{plan.version} packages/{arch}: {_reason(error)}")
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


def _reason(error: Exception) -> str:
    return error.detail if isinstance(error, AsudError) else f"{type(error).__name__}: {error}"
