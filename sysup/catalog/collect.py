"""Fetch and verify one version's files for the sync; runs in worker threads and never writes.

Trust rules (see ``sysup.catalog.sync``): a ``sha256sums`` counts only with a ``.sig`` that verifies
with one of the distribution's keys; opkg ``Packages`` only with a verifying ``Packages.sig``;
``profiles.json`` and apk ``index.json`` only when their sha256 is the one the verified list gives.
Results are ``TargetUpdate``s holding the parsed data and the validators of the files read.
"""

from __future__ import annotations

from asud.errors import SignatureError
from asud.upstream.errors import UpstreamNotFound
from asud.upstream.index_json import parse_index_json
from asud.upstream.packages_index import parse_packages
from asud.upstream.profiles_json import parse_profiles_json
from asud.upstream.records import PackageRecord
from asud.upstream.sha256sums import parse_sha256sums
from asud.upstream.usign import PublicKey, verify
from sysup.catalog import persist
from sysup.catalog.conditional import ConditionalFetcher, Fetched, FileState
from sysup.catalog.models import PackageFeed, Target

#: Architecture feeds read for every version (``packages/<arch>/<feed>/``); a 404 means "not built".
ARCH_FEEDS = ("base", "packages", "luci", "routing", "telephony")

_IndexResult = tuple[Fetched, list[PackageRecord] | None, list[FileState]]


class Collector:
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
        if not force and not sums.changed and sums.pending is None and sums.content is not None:
            # The very bytes stored with the data of an earlier sync, verified then (validators and data
            # are committed together): a new signature over them would tell nothing new.
            return parse_sha256sums(sums.content.decode("utf-8"))
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
        if stored is not None and not force and not update.files:
            # Both the list and its signature answered 304. The signed list names every file below the
            # target, recursively (profiles.json, packages/, kmods/<kver>/: upstream-formats §1.5), so
            # none of them changed either: a re-sync with nothing new costs two requests per target.
            update.package_manager = _package_manager(sums, tuple(stored.default_packages))
            return update
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
        stored = [
            row for (scope, key, _), row in self.stored_feeds.items() if scope == "arch" and key == arch
        ]
        try:
            sums = self._signed_sums(f"{base}/sha256sums", update, force=not stored)
        except UpstreamNotFound:
            if manager == "apk":
                raise
            # An opkg feed directory without a signed list: each feed's signed Packages decides.
        else:
            if stored and not update.files:
                # List and signature answered 304 and the list names every feed file: nothing changed.
                return update
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

    def _opkg_index(self, url: str, force: bool) -> _IndexResult:
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

    def _apk_index(self, url: str, sums: dict[str, str], prefix: str, force: bool) -> _IndexResult:
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
