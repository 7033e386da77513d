"""The ``POST /api/v1/build`` body (clients-contract §6.2), as real clients send it.

Unknown fields are ignored (the reference does the same). Every name field is an ASCII pattern that cannot
carry whitespace, newlines, shell metacharacters or a leading ``--`` (option injection into ``make``).
:meth:`BuildRequest.to_json` keeps the field order of the §6.3 ``request`` echo.

:func:`parse_build_request` is the way from client JSON to a :class:`BuildRequest`: it reads values as
the previous (pydantic) model did and refuses with the same texts (``asud.build.fields``). Constructing a
:class:`BuildRequest` directly checks nothing: that is for values already checked (normalisation, tests).
"""

from __future__ import annotations

import typing
from typing import Any, Literal

import attrs

from asud.build.fields import (
    FieldError,
    InvalidRequest,
    Reader,
    boolean,
    bounded,
    choice,
    decode_json_body,
    list_of,
    mapping_of,
    optional,
    read_object,
    refuse,
    text,
)

__all__ = [
    "ECHO_ORDER",
    "FILESYSTEMS",
    "BuildRequest",
    "FieldError",
    "InvalidRequest",
    "parse_build_request",
    "parse_build_request_json",
]

#: ``version``, ``version_code``, ``profile``, ``distro`` (the reference's ``^[\w.,-]*$``, ASCII only), and
#: never starting with ``-``, ``.`` or ``,`` (nothing that could read as an option or a relative path).
NAME_PATTERN = r"^(?:[A-Za-z0-9_][A-Za-z0-9_.,-]*)?$"
TARGET_PATTERN = r"^[A-Za-z0-9_]*/[A-Za-z0-9_]*$"
#: A package name, optionally prefixed with ``-`` (remove) or ``+`` (add); it must start alphanumeric.
PACKAGE_PATTERN = r"^[+-]?[A-Za-z0-9][A-Za-z0-9_.+-]*$"
#: opkg and apk versions: ``1.2.3-r1``, ``1:2.3-1``, ``25.010.0~abc``.
PACKAGE_VERSION_PATTERN = r"^[A-Za-z0-9_.+~:-]*$"
REPOSITORY_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"
REPOSITORY_URL_PATTERN = r"^\S+$"

#: Hard bounds of the model itself; the configured (smaller) limits are checked by ``validate_request``.
HARD_MAX_PACKAGES = 2000
HARD_MAX_NAME_LENGTH = 128
HARD_MAX_ROOTFS_SIZE_MB = 1024 * 1024
HARD_MAX_REPOSITORIES = 16
MAX_URL_LENGTH = 1024
MAX_KEY_LENGTH = 1024
MAX_CLIENT_LENGTH = 256

Filesystem = Literal["squashfs", "ext4", "ubifs", "erofs", "jffs2", "jffs2-nand", "targz", "cpiogz"]
RepositoriesMode = Literal["append", "replace"]
FILESYSTEMS: tuple[str, ...] = typing.get_args(Filesystem)


@attrs.frozen(kw_only=True)
class BuildRequest:
    """One build request; defaults are what a client omitting the field means. Field order is the echo's."""

    distro: str = "openwrt"
    version: str
    version_code: str = ""
    target: str
    profile: str
    packages: list[str] = attrs.field(factory=list)
    packages_versions: dict[str, str] = attrs.field(factory=dict)
    diff_packages: bool = False
    defaults: str | None = None
    rootfs_size_mb: int | None = None
    filesystem: Filesystem | None = None
    repositories: dict[str, str] = attrs.field(factory=dict)
    repositories_mode: RepositoriesMode = "append"
    repository_keys: list[str] = attrs.field(factory=list)
    client: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The request as the ``request`` field of an answer echoes it (fresh lists and dicts)."""
        return {name: _copy(getattr(self, name)) for name in ECHO_ORDER}


#: The fields in the order of the echo (and of checking): the order of the previous model's fields.
ECHO_ORDER: tuple[str, ...] = tuple(field.name for field in attrs.fields(BuildRequest))


def _copy(value: Any) -> Any:
    if isinstance(value, list | dict):
        return type(value)(value)
    return value


def _defaults(value: Any) -> str | None:
    # OFS always sends "" — that means "no script".
    return optional(text())(value) or None


def _client(value: Any) -> str | None:
    if value is None:
        return None
    checked: str = text(max_length=MAX_CLIENT_LENGTH)(value)
    if not checked.isprintable():
        raise refuse("Value error, client must be printable text")
    return checked or None


def _repository_keys(value: Any) -> list[str]:
    keys: list[str] = list_of(text(max_length=MAX_KEY_LENGTH), HARD_MAX_REPOSITORIES)(value)
    for key in keys:
        if any(not line.isprintable() for line in key.splitlines()):
            raise refuse("Value error, repository keys must be printable text")
    return keys


_name = text(pattern=NAME_PATTERN, max_length=HARD_MAX_NAME_LENGTH)
_package = text(pattern=PACKAGE_PATTERN, min_length=1, max_length=HARD_MAX_NAME_LENGTH)

#: field → (reader, required), in the order fields are checked and reported.
_READERS: dict[str, tuple[Reader, bool]] = {
    "distro": (_name, False),
    "version": (_name, True),
    "version_code": (_name, False),
    "target": (text(pattern=TARGET_PATTERN, max_length=HARD_MAX_NAME_LENGTH), True),
    "profile": (_name, True),
    "packages": (list_of(_package, HARD_MAX_PACKAGES), False),
    "packages_versions": (
        mapping_of(_package, text(pattern=PACKAGE_VERSION_PATTERN, max_length=HARD_MAX_NAME_LENGTH),
                   HARD_MAX_PACKAGES),
        False,
    ),
    "diff_packages": (boolean, False),
    "defaults": (_defaults, False),
    "rootfs_size_mb": (optional(bounded(1, HARD_MAX_ROOTFS_SIZE_MB)), False),
    "filesystem": (optional(choice(FILESYSTEMS)), False),
    "repositories": (
        mapping_of(text(pattern=REPOSITORY_NAME_PATTERN, max_length=HARD_MAX_NAME_LENGTH),
                   text(pattern=REPOSITORY_URL_PATTERN, max_length=MAX_URL_LENGTH), HARD_MAX_REPOSITORIES),
        False,
    ),
    "repositories_mode": (choice(typing.get_args(RepositoriesMode)), False),
    "repository_keys": (_repository_keys, False),
    "client": (_client, False),
}
assert tuple(_READERS) == ECHO_ORDER


def parse_build_request(body: object, *, max_rootfs_size_mb: int | None = None) -> BuildRequest:
    """The :class:`BuildRequest` in a decoded JSON body, or :class:`InvalidRequest` naming every bad field.

    ``max_rootfs_size_mb`` (the configured limit) refuses a larger ``rootfs_size_mb`` here already, as the
    web builder's instant check wants; without it only the hard bound applies (``validate_request`` checks
    the configured one).
    """
    readers = _READERS
    if max_rootfs_size_mb is not None:
        readers = {**_READERS, "rootfs_size_mb": (optional(_rootfs_at_most(max_rootfs_size_mb)), False)}
    return BuildRequest(**read_object(body, readers))


def _rootfs_at_most(limit: int) -> Reader:
    within_hard_bounds = bounded(1, HARD_MAX_ROOTFS_SIZE_MB)

    def read(value: Any) -> int:
        size: int = within_hard_bounds(value)
        if size > limit:
            raise refuse(f"Value error, rootfs_size_mb must be at most {limit}")
        return size

    return read


def parse_build_request_json(data: bytes, *, max_rootfs_size_mb: int | None = None) -> BuildRequest:
    """:func:`parse_build_request` of a raw ``application/json`` body (see ``decode_json_body`` for the
    answers to bodies that are empty, not JSON or not decodable)."""
    return parse_build_request(decode_json_body(data), max_rootfs_size_mb=max_rootfs_size_mb)
