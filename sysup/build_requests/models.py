"""The ``POST /api/v1/build`` body (clients-contract §6.2), as real clients send it.

Unknown fields are ignored (the reference does the same). Every name field is an ASCII pattern that cannot
carry whitespace, newlines, shell metacharacters or a leading ``--`` (option injection into ``make``).
``model_dump()`` keeps the field order of the §6.3 ``request`` echo.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator

#: ``version``, ``version_code``, ``profile``, ``distro`` (the reference's ``^[\w.,-]*$``, ASCII only), and
#: never starting with ``-``, ``.`` or ``,`` (nothing that could read as an option or a relative path).
NAME_PATTERN = r"^(?:[A-Za-z0-9_][A-Za-z0-9_.,-]*)?$"
TARGET_PATTERN = r"^[A-Za-z0-9_]*/[A-Za-z0-9_]*$"
#: A package name, optionally prefixed with ``-`` (remove) or ``+`` (add); it must start alphanumeric.
PACKAGE_PATTERN = r"^[+-]?[A-Za-z0-9][A-Za-z0-9_.+-]*$"
#: opkg and apk versions: ``1.2.3-r1``, ``1:2.3-1``, ``25.010.0~abc``.
PACKAGE_VERSION_PATTERN = r"^[A-Za-z0-9_.+~:-]*$"
REPOSITORY_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"

#: Hard bounds of the model itself; the configured (smaller) limits are checked by ``validate_request``.
HARD_MAX_PACKAGES = 2000
HARD_MAX_NAME_LENGTH = 128
HARD_MAX_ROOTFS_SIZE_MB = 1024 * 1024
HARD_MAX_REPOSITORIES = 16

Filesystem = Literal["squashfs", "ext4", "ubifs", "erofs", "jffs2", "jffs2-nand", "targz", "cpiogz"]

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=HARD_MAX_NAME_LENGTH)]
PackageName = Annotated[
    str, StringConstraints(pattern=PACKAGE_PATTERN, min_length=1, max_length=HARD_MAX_NAME_LENGTH)
]
PackageVersion = Annotated[
    str, StringConstraints(pattern=PACKAGE_VERSION_PATTERN, max_length=HARD_MAX_NAME_LENGTH)
]
RepositoryName = Annotated[
    str, StringConstraints(pattern=REPOSITORY_NAME_PATTERN, max_length=HARD_MAX_NAME_LENGTH)
]
RepositoryUrl = Annotated[str, StringConstraints(pattern=r"^\S+$", max_length=1024)]
RepositoryKey = Annotated[str, StringConstraints(max_length=1024)]


class BuildRequest(BaseModel):
    """One build request; defaults are what a client omitting the field means."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    distro: Name = "openwrt"
    version: Name
    version_code: Name = ""
    target: Annotated[str, StringConstraints(pattern=TARGET_PATTERN, max_length=HARD_MAX_NAME_LENGTH)]
    profile: Name
    packages: Annotated[list[PackageName], Field(max_length=HARD_MAX_PACKAGES)] = []
    packages_versions: Annotated[dict[PackageName, PackageVersion], Field(max_length=HARD_MAX_PACKAGES)] = {}
    diff_packages: bool = False
    defaults: str | None = None
    rootfs_size_mb: Annotated[int, Field(ge=1, le=HARD_MAX_ROOTFS_SIZE_MB)] | None = None
    filesystem: Filesystem | None = None
    repositories: Annotated[dict[RepositoryName, RepositoryUrl], Field(max_length=HARD_MAX_REPOSITORIES)] = {}
    repositories_mode: Literal["append", "replace"] = "append"
    repository_keys: Annotated[list[RepositoryKey], Field(max_length=HARD_MAX_REPOSITORIES)] = []
    client: Annotated[str, StringConstraints(max_length=256)] | None = None

    @field_validator("defaults")
    @classmethod
    def _empty_defaults_are_none(cls, value: str | None) -> str | None:
        # OFS always sends "" — that means "no script".
        return value or None

    @field_validator("client")
    @classmethod
    def _printable_client(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.isprintable():
            raise ValueError("client must be printable text")
        return value or None

    @field_validator("rootfs_size_mb")
    @classmethod
    def _rootfs_within_context_limit(cls, value: int | None, info: ValidationInfo) -> int | None:
        """When validated with ``context={"max_custom_rootfs_size_mb": N}``, enforce it here already."""
        limit = (info.context or {}).get("max_custom_rootfs_size_mb") if info.context else None
        if value is not None and limit is not None and value > limit:
            raise ValueError(f"rootfs_size_mb must be at most {limit}")
        return value

    @field_validator("repository_keys")
    @classmethod
    def _single_line_keys(cls, value: list[str]) -> list[str]:
        for key in value:
            if any(not line.isprintable() for line in key.splitlines()):
                raise ValueError("repository keys must be printable text")
        return value
