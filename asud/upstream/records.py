"""Plain records parsed from upstream files, shared by the catalog, the resolver and the builder.

They carry data only; parsing lives in the ``upstream`` modules named after each format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

PackageManager = Literal["opkg", "apk"]


@dataclass(frozen=True, slots=True)
class Dependency:
    """One alternative of a dependency: ``name``, optionally ``op`` (``<<``, ``<=``/``<``, ``=``,
    ``>=``/``>``, ``>>``) and ``version``."""

    name: str
    op: str | None = None
    version: str | None = None


@dataclass(frozen=True, slots=True)
class PackageRecord:
    """One package of an index (opkg ``Packages`` stanza or apk index entry).

    ``name`` is the name as the index lists it, **with** its ABI suffix (``libubox20240329``);
    ``abi_version`` is that suffix (``20240329``) or ``None``.
    ``depends`` holds each Depends entry as a tuple of alternatives (``a | b`` → two ``Dependency``).
    ``provides`` and ``conflicts`` are names (version qualifiers dropped where present).
    """

    name: str
    version: str
    depends: tuple[tuple[Dependency, ...], ...] = ()
    provides: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()
    abi_version: str | None = None
    architecture: str = ""
    filename: str = ""
    size: int = 0
    sha256: str = ""
    installed_size: int = 0
    section: str = ""
    description: str = ""

    @property
    def stripped_name(self) -> str:
        """The name without its ABI suffix, as ``STRIP_ABI=1`` manifests and index.json v2 show it."""
        if self.abi_version and self.name.endswith(self.abi_version):
            return self.name[: -len(self.abi_version)]
        return self.name


@dataclass(frozen=True, slots=True)
class VersionsDocument:
    """``/.versions.json``."""

    stable_version: str
    oldstable_version: str
    upcoming_version: str
    versions_list: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ImageEntry:
    name: str
    type: str
    sha256: str
    sha256_unsigned: str
    filesystem: str | None = None
    size: int | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "type": self.type, "sha256": self.sha256,
                                "sha256_unsigned": self.sha256_unsigned}
        if self.filesystem is not None:
            data["filesystem"] = self.filesystem
        if self.size is not None:
            data["size"] = self.size
        return data


@dataclass(frozen=True, slots=True)
class ProfileEntry:
    """One device of ``profiles.json``; ``titles`` are ``{vendor, model, variant?}`` or ``{title}`` dicts."""

    id: str
    titles: tuple[dict[str, str], ...]
    device_packages: tuple[str, ...] = ()
    supported_devices: tuple[str, ...] = ()
    image_prefix: str = ""
    images: tuple[ImageEntry, ...] = ()
    file_size_limits: dict[str, int] | None = None


@dataclass(frozen=True, slots=True)
class LinuxKernel:
    version: str
    release: str
    vermagic: str

    @property
    def kmods_dir(self) -> str:
        """Name of the ``kmods/<dir>`` feed: ``<version>-<release>-<vermagic>``."""
        return f"{self.version}-{self.release}-{self.vermagic}"


@dataclass(frozen=True, slots=True)
class ProfilesDocument:
    """``targets/<t>/<s>/profiles.json`` (and the same file an ImageBuilder writes into ``BIN_DIR``)."""

    target: str
    version_code: str
    version_number: str
    arch_packages: str
    source_date_epoch: int
    default_packages: tuple[str, ...]
    profiles: dict[str, ProfileEntry]
    metadata_version: int = 1
    linux_kernel: LinuxKernel | None = None
    #: Every top-level key as read, so unknown future keys can be passed on unchanged.
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class MakeInfoProfile:
    id: str
    title: str
    packages: tuple[str, ...]
    has_image_metadata: bool
    supported_devices: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MakeInfo:
    """What ``make info`` prints."""

    target: str
    revision: str
    default_packages: tuple[str, ...]
    profiles: dict[str, MakeInfoProfile]
    architecture: str | None = None
