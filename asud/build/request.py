"""The ``POST /api/v1/build`` body (clients-contract §6.2), as real clients send it.

Unknown fields are ignored (the reference does the same). Every name field is an ASCII pattern that cannot
carry whitespace, newlines, shell metacharacters or a leading ``--`` (option injection into ``make``).
:meth:`BuildRequest.to_json` keeps the field order of the §6.3 ``request`` echo.

:func:`parse_build_request` is the only way from client JSON to a :class:`BuildRequest`; it reads values
the way the pydantic model of the FastAPI server did (``"256"`` and ``256.0`` are 256, ``"yes"`` is true)
and refuses with the same texts (``Invalid request: profile: String should match pattern '…'``), so a
client that shows ``detail`` sees what it saw before. Constructing a :class:`BuildRequest` directly checks
nothing: that is for values already checked (normalisation, tests).
"""

from __future__ import annotations

import json
import math
import re
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import attrs

from asud.errors import BadRequest

__all__ = [
    "FILESYSTEMS",
    "BuildRequest",
    "FieldError",
    "InvalidRequest",
    "describe_errors",
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
FILESYSTEMS: tuple[str, ...] = typing.get_args(Filesystem)
REPOSITORY_MODES: tuple[str, ...] = ("append", "replace")

#: Unicode ``White_Space`` (what ``\s`` meant to the Rust regex engine that checked the patterns before;
#: Python's ``\s`` would also take U+001C..U+001F).
_WHITE_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_PATTERNS: dict[str, re.Pattern[str]] = {
    pattern: re.compile(pattern.replace(r"\S", f"[^{_WHITE_SPACE}]"))
    for pattern in (NAME_PATTERN, TARGET_PATTERN, PACKAGE_PATTERN, PACKAGE_VERSION_PATTERN,
                    REPOSITORY_NAME_PATTERN, REPOSITORY_URL_PATTERN)
}
_STRIP = _WHITE_SPACE.replace("\u2000-\u200a", "".join(map(chr, range(0x2000, 0x200B))))
_DECIMAL = re.compile(r"[+-]?[0-9]+(?:_[0-9]+)*")
_DECIMAL_ZEROS = re.compile(r"([+-]?[0-9]+)\.0+")
#: Longest integer text read (longer is refused before parsing, as before).
_MAX_INT_TEXT = 4300
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})

Location = tuple[str | int, ...]


@attrs.frozen
class FieldError:
    """One refused value: where (``("packages", 0)``) and why, in the words clients have been shown."""

    location: Location
    message: str

    def describe(self) -> str:
        return f"{'.'.join(str(part) for part in self.location) or 'body'}: {self.message}"


def describe_errors(errors: Sequence[FieldError]) -> str:
    """``Invalid request: profile: String should match pattern '…'; packages.0: …``."""
    if not errors:
        return "Invalid request"
    return "Invalid request: " + "; ".join(error.describe() for error in errors)


class InvalidRequest(BadRequest):
    """A body that is not a build request; ``errors`` names each refused field (empty: not JSON at all)."""

    def __init__(self, errors: Sequence[FieldError], detail: str | None = None) -> None:
        self.errors = tuple(errors)
        super().__init__(detail if detail is not None else describe_errors(self.errors))


@attrs.frozen
class BuildRequest:
    """One build request; defaults are what a client omitting the field means. Field order is the echo's."""

    version: str = attrs.field(kw_only=True)
    target: str = attrs.field(kw_only=True)
    profile: str = attrs.field(kw_only=True)
    distro: str = attrs.field(default="openwrt", kw_only=True)
    version_code: str = attrs.field(default="", kw_only=True)
    packages: list[str] = attrs.field(factory=list, kw_only=True)
    packages_versions: dict[str, str] = attrs.field(factory=dict, kw_only=True)
    diff_packages: bool = attrs.field(default=False, kw_only=True)
    defaults: str | None = attrs.field(default=None, kw_only=True)
    rootfs_size_mb: int | None = attrs.field(default=None, kw_only=True)
    filesystem: Filesystem | None = attrs.field(default=None, kw_only=True)
    repositories: dict[str, str] = attrs.field(factory=dict, kw_only=True)
    repositories_mode: Literal["append", "replace"] = attrs.field(default="append", kw_only=True)
    repository_keys: list[str] = attrs.field(factory=list, kw_only=True)
    client: str | None = attrs.field(default=None, kw_only=True)

    def to_json(self) -> dict[str, Any]:
        """The request as the ``request`` field of an answer echoes it (fresh lists and dicts)."""
        return {name: _copy(getattr(self, name)) for name in ECHO_ORDER}


#: The order of the echo (and of checking): the order of the fields of the previous model.
ECHO_ORDER: tuple[str, ...] = (
    "distro", "version", "version_code", "target", "profile", "packages", "packages_versions",
    "diff_packages", "defaults", "rootfs_size_mb", "filesystem", "repositories", "repositories_mode",
    "repository_keys", "client",
)


def _copy(value: Any) -> Any:
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


# -- reading values ----------------------------------------------------------------------------------------
class _Refused(Exception):
    """One value refused; ``errors`` are relative to the value (nested for lists and dicts)."""

    def __init__(self, *errors: FieldError) -> None:
        super().__init__(errors)
        self.errors = errors


def _refuse(message: str) -> _Refused:
    return _Refused(FieldError((), message))


Reader = Callable[[Any], Any]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _text(*, pattern: str | None = None, min_length: int | None = None, max_length: int | None = None
          ) -> Reader:
    """A string, then its length, then its pattern (each refusal in the order the old model checked)."""
    compiled = _PATTERNS[pattern] if pattern is not None else None

    def read(value: Any) -> str:
        if not isinstance(value, str):
            raise _refuse("Input should be a valid string")
        _check_unicode(value)
        if min_length is not None and len(value) < min_length:
            raise _refuse(f"String should have at least {_plural(min_length, 'character')}")
        if max_length is not None and len(value) > max_length:
            raise _refuse(f"String should have at most {_plural(max_length, 'character')}")
        if compiled is not None and not compiled.fullmatch(value):
            raise _refuse(f"String should match pattern '{pattern}'")
        return value

    return read


def _check_unicode(value: str) -> None:
    """Refuse lone surrogates (``"\\ud800"`` in JSON): they cannot be written to a file or a hash."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        message = "Input should be a valid string, unable to parse raw data as a unicode string"
        raise _refuse(message) from None


def _optional(reader: Reader) -> Reader:
    def read(value: Any) -> Any:
        return None if value is None else reader(value)

    return read


def _choice(options: Sequence[str]) -> Reader:
    quoted = [f"'{option}'" for option in options]
    message = "Input should be " + ", ".join(quoted[:-1]) + f" or {quoted[-1]}"

    def read(value: Any) -> str:
        if isinstance(value, str):
            _check_unicode(value)
        if not isinstance(value, str) or value not in options:
            raise _refuse(message)
        return value

    return read


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and _is_i64(value):
        if value in (0, 1):
            return bool(value)
        raise _refuse("Input should be a valid boolean, unable to interpret input")
    if isinstance(value, str):
        _check_unicode(value)
        lowered = value.lower()
        if lowered in _TRUE or lowered in _FALSE:
            return lowered in _TRUE
        raise _refuse("Input should be a valid boolean, unable to interpret input")
    raise _refuse("Input should be a valid boolean")


def _is_i64(number: float) -> bool:
    """A whole number a 64-bit integer holds (what a number had to be to be read as a boolean)."""
    return (isinstance(number, int) or number.is_integer()) and -(2**63) <= number < 2**63


def _integer(value: Any) -> int:
    """Whole numbers as JSON numbers, booleans or decimal text (``" 256 "``, ``"1_000"``, ``"256.0"``)."""
    if isinstance(value, bool | int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _refuse("Input should be a finite number")
        if not value.is_integer():
            raise _refuse("Input should be a valid integer, got a number with a fractional part")
        if not -(2.0**63) <= value <= 2.0**63:
            raise _refuse("Unable to parse input string as an integer, exceeded maximum size")
        return int(value)
    if isinstance(value, str):
        _check_unicode(value)
        text = value.strip(_STRIP)
        if len(text) > _MAX_INT_TEXT:
            raise _refuse("Unable to parse input string as an integer, exceeded maximum size")
        if _DECIMAL.fullmatch(text):
            return int(text.replace("_", ""))
        zeros = _DECIMAL_ZEROS.fullmatch(text)
        if zeros:
            return int(zeros.group(1))
        raise _refuse("Input should be a valid integer, unable to parse string as an integer")
    raise _refuse("Input should be a valid integer")


def _bounded(minimum: int, maximum: int) -> Reader:
    def read(value: Any) -> int:
        number = _integer(value)
        if number < minimum:
            raise _refuse(f"Input should be greater than or equal to {minimum}")
        if number > maximum:
            raise _refuse(f"Input should be less than or equal to {maximum}")
        return number

    return read


def _list(item: Reader, max_items: int) -> Reader:
    def read(value: Any) -> list[Any]:
        if not isinstance(value, list | tuple):
            raise _refuse("Input should be a valid list")
        # Counted as items are read, so a list over the bound is refused for that alone.
        if len(value) > max_items:
            raise _refuse(f"List should have at most {_plural(max_items, 'item')} after validation, "
                          f"not {len(value)}")
        result, errors = [], []
        for index, element in enumerate(value):
            try:
                result.append(item(element))
            except _Refused as refused:
                errors.extend(_under(index, refused.errors))
        if errors:
            raise _Refused(*errors)
        return result

    return read


def _mapping(key: Reader, item: Reader, max_items: int) -> Reader:
    def read(value: Any) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise _refuse("Input should be a valid dictionary")
        result, errors = {}, []
        for name, element in value.items():
            accepted = True
            try:
                checked_key = key(name)
            except _Refused as refused:
                errors.extend(_under(name, _under("[key]", refused.errors)))
                accepted = False
            try:
                checked_value = item(element)
            except _Refused as refused:
                errors.extend(_under(name, refused.errors))
                accepted = False
            if accepted:
                result[checked_key] = checked_value
        # Only accepted entries count towards the bound, and exceeding it is the only error then.
        if len(result) > max_items:
            raise _refuse(f"Dictionary should have at most {_plural(max_items, 'item')} after validation, "
                          "not more")
        if errors:
            raise _Refused(*errors)
        return result

    return read


def _under(part: str | int, errors: Sequence[FieldError]) -> list[FieldError]:
    return [FieldError((part, *error.location), error.message) for error in errors]


def _defaults(value: Any) -> str | None:
    # OFS always sends "" — that means "no script".
    return _optional(_text())(value) or None


def _client(value: Any) -> str | None:
    if value is None:
        return None
    text: str = _text(max_length=MAX_CLIENT_LENGTH)(value)
    if not text.isprintable():
        raise _refuse("Value error, client must be printable text")
    return text or None


def _repository_keys(value: Any) -> list[str]:
    keys: list[str] = _list(_text(max_length=MAX_KEY_LENGTH), HARD_MAX_REPOSITORIES)(value)
    for key in keys:
        if any(not line.isprintable() for line in key.splitlines()):
            raise _refuse("Value error, repository keys must be printable text")
    return keys


_name = _text(pattern=NAME_PATTERN, max_length=HARD_MAX_NAME_LENGTH)
_package = _text(pattern=PACKAGE_PATTERN, min_length=1, max_length=HARD_MAX_NAME_LENGTH)

#: field → (reader, required); in the order fields are checked and reported.
_READERS: dict[str, tuple[Reader, bool]] = {
    "distro": (_name, False),
    "version": (_name, True),
    "version_code": (_name, False),
    "target": (_text(pattern=TARGET_PATTERN, max_length=HARD_MAX_NAME_LENGTH), True),
    "profile": (_name, True),
    "packages": (_list(_package, HARD_MAX_PACKAGES), False),
    "packages_versions": (
        _mapping(_package, _text(pattern=PACKAGE_VERSION_PATTERN, max_length=HARD_MAX_NAME_LENGTH),
                 HARD_MAX_PACKAGES),
        False,
    ),
    "diff_packages": (_boolean, False),
    "defaults": (_defaults, False),
    "rootfs_size_mb": (_optional(_bounded(1, HARD_MAX_ROOTFS_SIZE_MB)), False),
    "filesystem": (_optional(_choice(FILESYSTEMS)), False),
    "repositories": (
        _mapping(_text(pattern=REPOSITORY_NAME_PATTERN, max_length=HARD_MAX_NAME_LENGTH),
                 _text(pattern=REPOSITORY_URL_PATTERN, max_length=MAX_URL_LENGTH), HARD_MAX_REPOSITORIES),
        False,
    ),
    "repositories_mode": (_choice(REPOSITORY_MODES), False),
    "repository_keys": (_repository_keys, False),
    "client": (_client, False),
}


def parse_build_request(body: object, *, max_rootfs_size_mb: int | None = None) -> BuildRequest:
    """The :class:`BuildRequest` in a decoded JSON body, or :class:`InvalidRequest` naming every bad field.

    ``max_rootfs_size_mb`` (the configured limit) refuses a larger ``rootfs_size_mb`` here already, as the
    instant check of the web builder wants; without it only the hard bound applies.
    """
    if not isinstance(body, Mapping):
        raise InvalidRequest(
            [FieldError((), "Input should be a valid dictionary or object to extract fields from")])
    values: dict[str, Any] = {}
    errors: list[FieldError] = []
    for name, (reader, required) in _READERS.items():
        if name not in body:
            if required:
                errors.append(FieldError((name,), "Field required"))
            continue
        try:
            values[name] = reader(body[name])
        except _Refused as refused:
            errors.extend(_under(name, refused.errors))
            continue
        size = values[name] if name == "rootfs_size_mb" else None
        if size is not None and max_rootfs_size_mb is not None and size > max_rootfs_size_mb:
            errors.append(FieldError(
                (name,), f"Value error, rootfs_size_mb must be at most {max_rootfs_size_mb}"))
    if errors:
        raise InvalidRequest(errors)
    return BuildRequest(**values)


#: Said for a body that is JSON-shaped nonsense the decoder gave up on (too deep, not UTF-8/16/32).
UNPARSABLE_BODY = "There was an error parsing the body"
NOT_JSON = "Invalid request: the body is not valid JSON"


def parse_build_request_json(data: bytes, *, max_rootfs_size_mb: int | None = None) -> BuildRequest:
    """:func:`parse_build_request` of a raw ``application/json`` body, with the answers for bodies that
    are empty (``body: Field required``), not JSON, or not decodable at all."""
    if not data:
        raise InvalidRequest([FieldError((), "Field required")])
    try:
        body = json.loads(data)
    except json.JSONDecodeError:
        raise InvalidRequest([], NOT_JSON) from None
    except (ValueError, RecursionError):
        raise InvalidRequest([], UNPARSABLE_BODY) from None
    return parse_build_request(body, max_rootfs_size_mb=max_rootfs_size_mb)
