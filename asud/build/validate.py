"""Check a request against the catalog before anything is queued (DESIGN.md decision 9).

The order and texts of the first checks are the reference server's, because clients show ``detail``
verbatim: defaults → repositories → distro → branch → version → target → profile; then the configured
limits, every package name, and for opkg releases the full dependency resolution.

Everything up to the limits reads the in-memory catalog on the reactor thread; the package index arrives
as a Deferred, and checking names and resolving the dependency closure (CPU work over thousands of
records) runs in the reactor's thread pool on that index, which is never modified once built. The
outcome of a resolution is a pure function of the catalog and the package lists: callers that pass a
``ResolutionCache`` (``asud.build.resolutions``) get a repeated selection's outcome from there, on the
reactor, with no thread and no resolution.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlsplit

import attrs
from twisted.internet import defer
from twisted.internet.threads import deferToThread

from asud.build.hashing import defaults_hash, image_key, request_hash
from asud.build.normalise import diff_packages, normalise_request
from asud.build.request import BuildRequest
from asud.build.resolutions import ResolutionCache, ResolutionKey, Resolved
from asud.catalog.resolver import PackageIndex, build_package_list, check_names, resolve
from asud.errors import BadRequest, DefaultsRejected, PackageConflict, UnknownPackages
from asud.upstream.usign import parse_public_key
from asud.upstream.version_order import branch_of

if TYPE_CHECKING:
    from asud.config import Config
    from asud.upstream.records import ProfileEntry

__all__ = ["CatalogReader", "RequestLimits", "ValidatedRequest", "is_repository_allowed", "validate_request"]


class CatalogReader(Protocol):
    """The part of ``asud.catalog.Catalog`` validation reads."""

    def version(self, distro: str, version: str) -> Any: ...
    def target(self, distro: str, version: str, target: str) -> Any: ...
    def profile(self, distro: str, version: str, target: str, name: str) -> ProfileEntry | None: ...
    def package_index(self, distro: str, version: str, target: str) -> defer.Deferred[PackageIndex]: ...
    def branches(self, distro: str) -> Mapping[str, Any]: ...


@attrs.frozen(kw_only=True)
class RequestLimits:
    """What a request may ask for on this server (``[requests]`` of the config, and the distros)."""

    allow_defaults: bool = False
    max_defaults_length: int = 20480
    max_custom_rootfs_size_mb: int = 1024
    max_packages: int = 500
    repository_allow_list: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    distros: frozenset[str] = attrs.field(default=frozenset({"openwrt"}), converter=frozenset)

    @classmethod
    def from_config(cls, config: Config) -> RequestLimits:
        requests = config.requests
        return cls(
            allow_defaults=requests.allow_defaults,
            max_defaults_length=requests.max_defaults_length,
            max_custom_rootfs_size_mb=requests.max_custom_rootfs_size_mb,
            max_packages=requests.max_packages,
            repository_allow_list=tuple(requests.repository_allow_list),
            distros=frozenset(config.distros),
        )


@attrs.frozen(kw_only=True)
class ValidatedRequest:
    """A request that passed every check, with everything the build records and the pool need."""

    #: The normalised request (``profile`` with ``_``, the package list in canonical form).
    request: BuildRequest
    request_hash: str
    image_key: str
    bin_dir: str
    version_info: Any
    target_info: Any
    profile: str
    #: ``PACKAGES=`` of ``make image`` (requested names plus ``-name`` removals of ``diff_packages``).
    build_packages: tuple[str, ...]
    #: Predicted manifest (name → version) for opkg releases; ``None`` for apk releases.
    manifest: dict[str, str] | None
    #: The revision that will be built: the requested ``version_code`` or the catalog's current one.
    version_code: str
    package_manager: str = "opkg"
    extra: dict[str, Any] = attrs.field(factory=dict)

    @property
    def distro(self) -> str:
        return self.request.distro

    @property
    def has_defaults(self) -> bool:
        return self.request.defaults is not None

    @property
    def versioned(self) -> bool:
        """Requests pinning package versions get the long cache TTL (reference semantics)."""
        return bool(self.request.packages_versions)

    def echo(self) -> dict[str, Any]:
        """The normalised request as the ``request`` field of every answer shows it."""
        return self.request.to_json()

    def job(self) -> dict[str, Any]:
        """The JSON document the build pool builds from (stored with the build record)."""
        return {
            "distro": self.request.distro,
            "version": self.request.version,
            "version_path": getattr(self.version_info, "path", ""),
            "package_manager": self.package_manager,
            "target": self.request.target,
            "profile": self.profile,
            "packages": list(self.build_packages),
            "packages_versions": dict(self.request.packages_versions),
            "requested_version_code": self.request.version_code,
            "version_code": self.version_code,
            "defaults": self.request.defaults,
            "rootfs_size_mb": self.request.rootfs_size_mb,
            "filesystem": self.request.filesystem,
            "repositories": dict(self.request.repositories),
            "repositories_mode": self.request.repositories_mode,
            "repository_keys": list(self.request.repository_keys),
            "request_hash": self.request_hash,
            "image_key": self.image_key,
            "bin_dir": self.bin_dir,
            "manifest": self.manifest,
        }


def is_repository_allowed(url: str, allow_list: Iterable[str]) -> bool:
    """True when ``url`` lies under an allow-list entry: same scheme, host and port, and a path below the
    entry's path on a segment boundary. Userinfo, ``..``, backslashes, encoded tricks, queries are refused."""
    if any(ch.isspace() or ch == "\\" for ch in url) or "%" in url or "@" in url:
        return False
    try:
        parsed = urlsplit(url)
        port = parsed.port
    except ValueError:
        return False
    if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.query or parsed.fragment:
        return False
    segments = unquote(parsed.path).split("/")
    if any(segment in (".", "..") for segment in segments):
        return False
    for entry in allow_list:
        try:
            allowed = urlsplit(entry)
            allowed_port = allowed.port
        except ValueError:
            continue
        if (allowed.scheme, (allowed.hostname or "").lower(), allowed_port) != (
            parsed.scheme,
            parsed.hostname.lower(),
            port,
        ):
            continue
        prefix = allowed.path.rstrip("/")
        if parsed.path == prefix or parsed.path.startswith(prefix + "/"):
            return True
    return False


_REPOSITORY_NAME = re.compile(r"\A\w[\w.-]*\Z", re.ASCII)


def validate_request(
    request: BuildRequest,
    catalog: CatalogReader,
    limits: RequestLimits,
    resolutions: ResolutionCache | None = None,
) -> defer.Deferred[ValidatedRequest]:
    """Normalise and check ``request``; fails with an ``asud.errors`` error (string ``detail``).

    With ``resolutions`` (``resolutions_of(catalog)``: it must belong to ``catalog``), a package selection
    resolved before against this catalog is answered from there, without a thread; every other check
    runs as always, so the answer is the one an uncached validation gives.
    """
    return defer.ensureDeferred(_validate(normalise_request(request), catalog, limits, resolutions))


def _check_request(request: BuildRequest, limits: RequestLimits) -> None:
    """What needs no catalog: ``defaults``, repositories and their keys, the distribution."""
    if request.defaults is not None:
        if not limits.allow_defaults:
            raise DefaultsRejected("Handling `defaults` not enabled on server")
        if len(request.defaults.encode("utf-8")) > limits.max_defaults_length:
            raise DefaultsRejected(
                f"`defaults` exceeds the maximum length of {limits.max_defaults_length} bytes"
            )
    for name, url in request.repositories.items():
        if not _REPOSITORY_NAME.match(name):
            raise BadRequest(f"Invalid repository name: {name}")
        if not is_repository_allowed(url, limits.repository_allow_list):
            raise BadRequest(f"Repository not allowed: {url}")
    for key in request.repository_keys:
        try:
            parse_public_key(key)
        except ValueError as exc:
            raise BadRequest(f"Invalid repository key: {exc}") from None
    if request.distro not in limits.distros:
        raise BadRequest(f"Unsupported distro: {request.distro}")


async def _validate(
    request: BuildRequest, catalog: CatalogReader, limits: RequestLimits, resolutions: ResolutionCache | None
) -> ValidatedRequest:
    _check_request(request, limits)

    branch = catalog.branches(request.distro).get(branch_of(request.version))
    if branch is None or not getattr(branch, "enabled", True):
        raise BadRequest(f"Unsupported branch: {request.version}")

    version_info = catalog.version(request.distro, request.version)
    if version_info is None:
        raise BadRequest(f"Unsupported version: {request.version}")

    target_info = catalog.target(request.distro, request.version, request.target)
    if target_info is None:
        raise BadRequest(
            f"Unsupported target: {request.target}. The requested target was either dropped, is still "
            "being built or is not supported by the selected version. Please check the forums or try "
            "again later."
        )

    profile = catalog.profile(request.distro, request.version, request.target, request.profile)
    if profile is None:
        raise BadRequest(
            f"Unsupported profile: {request.profile}. The requested profile was either dropped or never "
            "existed. Please check the forums for more information."
        )

    if len(request.packages) > limits.max_packages:
        raise BadRequest(f"Too many packages: {len(request.packages)} (at most {limits.max_packages})")
    if request.rootfs_size_mb is not None and request.rootfs_size_mb > limits.max_custom_rootfs_size_mb:
        raise BadRequest(
            f"rootfs_size_mb {request.rootfs_size_mb} exceeds the maximum of "
            f"{limits.max_custom_rootfs_size_mb} MB"
        )

    default_packages = tuple(getattr(target_info, "default_packages", ()) or ())
    device_packages = tuple(profile.device_packages)
    requested = list(request.packages)
    shipped = [*default_packages, *device_packages]
    build_packages = diff_packages(requested, shipped) if request.diff_packages else requested
    package_manager = getattr(version_info, "package_manager", "opkg")

    manifest, package_set = await _resolution(
        catalog, request, default_packages, device_packages, build_packages, package_manager, resolutions
    )

    version_code = request.version_code or getattr(target_info, "version_code", "") or ""
    the_hash = request_hash(request)
    defaults_digest = defaults_hash(request.defaults)
    return ValidatedRequest(
        request=request,
        request_hash=the_hash,
        image_key=image_key(
            distro=request.distro,
            version=request.version,
            version_code=version_code,
            target=request.target,
            profile=profile.id,
            packages=package_set,
            packages_versions=request.packages_versions,
            defaults=request.defaults,
            rootfs_size_mb=request.rootfs_size_mb,
            filesystem=request.filesystem,
            repositories=request.repositories,
            repositories_mode=request.repositories_mode,
            repository_keys=request.repository_keys,
        ),
        bin_dir=f"{the_hash}-{defaults_digest}" if defaults_digest else the_hash,
        version_info=version_info,
        target_info=target_info,
        profile=profile.id,
        build_packages=tuple(build_packages),
        manifest=manifest,
        version_code=version_code,
        package_manager=package_manager,
    )


async def _resolution(
    catalog: CatalogReader,
    request: BuildRequest,
    default_packages: tuple[str, ...],
    device_packages: tuple[str, ...],
    build_packages: list[str],
    package_manager: str,
    resolutions: ResolutionCache | None,
) -> tuple[dict[str, str] | None, dict[str, str] | list[str]]:
    """``_resolve_packages`` over the target's index: from ``resolutions`` on the reactor when this
    selection was resolved before against this catalog, else in a thread (then kept there)."""
    key: ResolutionKey = (
        request.distro, request.version, request.target, package_manager,
        default_packages, device_packages, tuple(build_packages),
    )
    known = resolutions.get(key) if resolutions is not None else None
    if known is not None:
        return known.result()
    index = await catalog.package_index(request.distro, request.version, request.target)
    try:
        result = await deferToThread(
            _resolve_packages, index, default_packages, device_packages, build_packages, package_manager
        )
    except (UnknownPackages, PackageConflict) as refusal:
        if resolutions is not None:
            resolutions.put(key, Resolved.of(refusal))
        raise
    if resolutions is not None:
        resolutions.put(key, Resolved.of(result))
    return result


def _resolve_packages(
    index: PackageIndex,
    default_packages: tuple[str, ...],
    device_packages: tuple[str, ...],
    build_packages: list[str],
    package_manager: str,
) -> tuple[dict[str, str] | None, dict[str, str] | list[str]]:
    """The predicted manifest (opkg; ``None`` for apk) and the package set the image key names.

    Runs in a thread. Raises ``UnknownPackages`` or ``PackageConflict`` for an impossible selection.
    """
    # Names the target itself ships (defaults, device packages) are trusted as they are: apk-era
    # ``index.json`` lists real packages only, not virtual names such as ``nftables``. The opkg
    # resolution below still checks the whole selection, Provides included.
    shipped = {*default_packages, *device_packages}
    check_names(index, [name for name in build_packages if not name.startswith("-") and name not in shipped])
    if package_manager == "opkg":
        resolution = resolve(
            index,
            default_packages=default_packages,
            profile_packages=device_packages,
            requested=build_packages,
            strip_abi=True,
        )
        manifest = dict(resolution.manifest)
        if resolution.complete:
            return manifest, manifest
        return manifest, sorted(build_package_list(default_packages, device_packages, build_packages))
    # apk: the top-level set after removals; apk resolves it identically for one index revision.
    return None, sorted(build_package_list(default_packages, device_packages, build_packages))
