"""Check a request against the catalog before anything is queued (DESIGN.md decision 6).

The order and texts of the first checks are the reference server's, because clients show ``detail``
verbatim: defaults → repositories → distro → branch → version → target → profile; then the configured
limits, every package name, and for opkg releases the full dependency resolution.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from asud.errors import BadRequest, DefaultsRejected
from asud.upstream.usign import parse_public_key
from asud.upstream.version_order import branch_of
from sysup.build_requests.hashing import defaults_hash, image_key, request_hash
from sysup.build_requests.models import BuildRequest
from sysup.build_requests.normalise import diff_packages, normalise_request
from sysup.config import Settings


class CatalogReader(Protocol):
    """The part of ``sysup.catalog.Catalog`` validation reads."""

    def version(self, distro: str, version: str) -> Any: ...
    def target(self, distro: str, version: str, target: str) -> Any: ...
    def profile(self, distro: str, version: str, target: str, name: str) -> Any: ...
    def package_index(self, distro: str, version: str, target: str) -> Any: ...
    def branches(self, distro: str) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """What a request may ask for on this server (from ``Settings``)."""

    allow_defaults: bool = False
    max_defaults_length: int = 20480
    max_custom_rootfs_size_mb: int = 1024
    max_packages: int = 500
    repository_allow_list: tuple[str, ...] = ()
    distros: frozenset[str] = frozenset({"openwrt"})

    @classmethod
    def from_settings(cls, settings: Settings) -> RequestLimits:
        return cls(
            allow_defaults=settings.allow_defaults,
            max_defaults_length=settings.max_defaults_length,
            max_custom_rootfs_size_mb=settings.max_custom_rootfs_size_mb,
            max_packages=settings.max_packages,
            repository_allow_list=tuple(settings.repository_allow_list),
            distros=frozenset(settings.distros),
        )


@dataclass(frozen=True, slots=True)
class ValidatedRequest:
    """A request that passed every check, with everything the build service and the worker need."""

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
    extra: dict[str, Any] = field(default_factory=dict)

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

    def job(self) -> dict[str, Any]:
        """The JSON document a worker builds from (stored on the build record)."""
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
    request: BuildRequest, catalog: CatalogReader, limits: RequestLimits
) -> ValidatedRequest:
    """Normalise and check ``request``; raise a ``asud.errors`` error (string ``detail``) if it fails."""
    request = normalise_request(request)

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

    branches = catalog.branches(request.distro)
    branch = branches.get(branch_of(request.version))
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

    # Imported here: the catalog imports nothing from build_requests, but keeping this edge late lets
    # the request models be used (e.g. by the API's OpenAPI schema) without loading the resolver.
    from asud.catalog.resolver import build_package_list, check_names, resolve

    default_packages = tuple(getattr(target_info, "default_packages", ()) or ())
    device_packages = tuple(profile.device_packages)
    requested = list(request.packages)
    build_packages = diff_packages(requested, [*default_packages, *device_packages]) if (
        request.diff_packages
    ) else requested

    index = catalog.package_index(request.distro, request.version, request.target)
    # Names the target itself ships (defaults, device packages) are trusted as they are: apk-era
    # ``index.json`` lists real packages only, not virtual names such as ``nftables``. The opkg
    # resolution below still checks the whole selection, Provides included.
    shipped = {*default_packages, *device_packages}
    check_names(index, [name for name in build_packages if not name.startswith("-") and name not in shipped])

    package_manager = getattr(version_info, "package_manager", "opkg")
    manifest: dict[str, str] | None = None
    if package_manager == "opkg":
        resolution = resolve(
            index,
            default_packages=default_packages,
            profile_packages=device_packages,
            requested=build_packages,
            strip_abi=True,
        )
        manifest = dict(resolution.manifest)
    package_set: dict[str, str] | list[str]
    if manifest is not None and resolution.complete:
        package_set = manifest
    else:
        # apk: the top-level set after removals; apk resolves it identically for one index revision.
        package_set = sorted(build_package_list(default_packages, device_packages, build_packages))

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

