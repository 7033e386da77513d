"""What one catalog load read, skipped and refused — for ``asud sync``'s output and the daemon's log.

Counts per distribution and per version, releases left out on purpose (``min_branch``, ``branches``) with
their URL, and every problem with the URL it concerns. A version whose package feeds were read and hold
no package at all is a problem too: builds of it could not be validated.
"""

from __future__ import annotations

import attrs

__all__ = ["DistroReport", "SkippedRelease", "SyncReport", "VersionReport"]


@attrs.define
class VersionReport:
    """One version as this load saw it."""

    version: str
    #: The version's directory on the download server.
    url: str
    targets: int = 0
    #: Targets whose signed lists changed (or were read for the first time) in this load.
    targets_changed: int = 0
    profiles: int = 0
    #: Packages over every feed of the version; ``None`` when this load did not read the feeds (the
    #: daemon reads them on first use).
    packages: int | None = None

    def line(self) -> str:
        changed = f" ({self.targets_changed} changed)" if self.targets_changed else ""
        if self.packages is None:
            packages = "packages read on first use"
        elif self.packages == 0:
            packages = "0 packages — PROBLEM: no package index could be used"
        else:
            packages = f"{self.packages} packages"
        return f"{self.version}: {self.targets} targets{changed}, {self.profiles} profiles, {packages}"


@attrs.frozen
class SkippedRelease:
    """A release the download server lists that this daemon leaves out, and why."""

    version: str
    url: str
    reason: str


@attrs.define
class DistroReport:
    """What one load did for one distribution."""

    distro: str
    upstream: str = ""
    requests: int = 0
    #: Requests answered 304 (the bytes came from the on-disk cache).
    not_modified: int = 0
    #: Requests answered 404: optional files (feeds, ``XX.YY-SNAPSHOT``) that do not exist.
    not_found: int = 0
    #: Requests the server did not answer, served from the on-disk cache instead.
    stale: int = 0
    bytes: int = 0
    versions: list[VersionReport] = attrs.field(factory=list)
    skipped: list[SkippedRelease] = attrs.field(factory=list)
    #: Problems, each naming the URL it concerns.
    errors: list[str] = attrs.field(factory=list)
    #: Versions and targets of the previous catalog that are no longer upstream.
    gone: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def targets(self) -> int:
        return sum(version.targets for version in self.versions)

    @property
    def targets_changed(self) -> int:
        return sum(version.targets_changed for version in self.versions)

    @property
    def profiles(self) -> int:
        return sum(version.profiles for version in self.versions)

    @property
    def packages(self) -> int | None:
        counts = [version.packages for version in self.versions if version.packages is not None]
        return sum(counts) if counts else None

    def version(self, name: str) -> VersionReport | None:
        return next((version for version in self.versions if version.version == name), None)

    def lines(self) -> list[str]:
        head = (
            f"{self.distro}: {len(self.versions)} versions, {self.targets} targets "
            f"({self.targets_changed} changed), {self.profiles} profiles; {self.requests} requests "
            f"({self.not_modified} not modified, {self.not_found} not found), {self.bytes / 1e6:.1f} MB"
        )
        if self.upstream:
            head += f" from {self.upstream}"
        lines = [head]
        lines += [f"  {version.line()}" for version in self.versions]
        lines += [f"  {skip.version}: skipped, {skip.reason} ({skip.url})" for skip in self.skipped]
        if self.gone:
            lines.append(f"  {self.gone} versions or targets are no longer upstream and were dropped")
        lines += [f"  PROBLEM: {error}" for error in self.errors]
        return lines


@attrs.define
class SyncReport:
    """Every distribution of one load; ``changed`` is false when the catalog came out identical."""

    distros: list[DistroReport] = attrs.field(factory=list)
    changed: bool = True

    @property
    def ok(self) -> bool:
        return all(report.ok for report in self.distros)

    @property
    def errors(self) -> list[str]:
        """Every problem, prefixed with its distribution."""
        return [f"{report.distro}: {error}" for report in self.distros for error in report.errors]

    @property
    def problems(self) -> list[str]:
        """The same as ``errors`` (what ``asud sync`` counts for its exit status)."""
        return self.errors

    @property
    def requests(self) -> int:
        return sum(report.requests for report in self.distros)

    @property
    def not_modified(self) -> int:
        return sum(report.not_modified for report in self.distros)

    def distro(self, name: str) -> DistroReport | None:
        return next((report for report in self.distros if report.distro == name), None)

    def lines(self) -> list[str]:
        """Human lines: one head line per distribution, one per version and skipped release, and one
        ``PROBLEM:`` line per problem (what ``asud sync`` prints and the daemon logs)."""
        return [line for report in self.distros for line in report.lines()]
