"""Reading the fields of a JSON request body with the words clients have been shown.

The previous server checked bodies with pydantic and answered ``Invalid request: <field>: <reason>``
(``profile: String should match pattern '…'``, ``rootfs_size_mb: Input should be a valid integer, unable
to parse string as an integer``, ``packages.0: …``). Clients show ``detail`` verbatim, so these readers
accept what it accepted (``"256"`` and ``256.0`` are 256, ``"yes"`` is true) and refuse with its texts.

A reader takes one decoded JSON value and returns it checked, or raises :class:`Refused`;
:func:`read_object` runs a table of readers over a body and raises :class:`InvalidRequest` naming every
refused field, in the table's order.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from asud.errors import BadRequest

__all__ = [
    "NOT_JSON",
    "UNPARSABLE_BODY",
    "FieldError",
    "InvalidRequest",
    "Reader",
    "Refused",
    "boolean",
    "bounded",
    "choice",
    "decode_json_body",
    "describe_errors",
    "integer",
    "list_of",
    "mapping_of",
    "optional",
    "read_object",
    "refuse",
    "text",
    "union_of",
]

Location = tuple[str | int, ...]
Reader = Callable[[Any], Any]

#: Unicode ``White_Space`` (what ``\s`` meant to the Rust regex engine that checked patterns before;
#: Python's ``\s`` would also take U+001C..U+001F).
_WHITE_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_STRIP = _WHITE_SPACE.replace("\u2000-\u200a", "".join(map(chr, range(0x2000, 0x200B))))
_DECIMAL = re.compile(r"[+-]?[0-9]+(?:_[0-9]+)*")
_DECIMAL_ZEROS = re.compile(r"([+-]?[0-9]+)\.0+")
#: Longest integer text read (longer is refused before parsing, as before).
_MAX_INT_TEXT = 4300
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})

#: Said for a body the JSON decoder refused, and for one it gave up on (too deep, not UTF-8/16/32).
NOT_JSON = "Invalid request: the body is not valid JSON"
UNPARSABLE_BODY = "There was an error parsing the body"


@attrs.frozen
class FieldError:
    """One refused value: where (``("packages", 0)``; ``()`` is the body) and why."""

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
    """A body that is not the request it should be; ``errors`` names each refused field (empty when the
    body was not JSON at all)."""

    def __init__(self, errors: Sequence[FieldError], detail: str | None = None) -> None:
        self.errors = tuple(errors)
        super().__init__(detail if detail is not None else describe_errors(self.errors))


class Refused(Exception):
    """A value refused by a reader; ``errors`` are relative to the value (nested for lists and dicts)."""

    def __init__(self, *errors: FieldError) -> None:
        super().__init__(errors)
        self.errors = errors


def refuse(message: str) -> Refused:
    return Refused(FieldError((), message))


def under(part: str | int, errors: Sequence[FieldError]) -> list[FieldError]:
    """``errors`` one level deeper, below ``part``."""
    return [FieldError((part, *error.location), error.message) for error in errors]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def check_unicode(value: str) -> None:
    """Refuse lone surrogates (``"\\ud800"`` in JSON): they cannot be written to a file or hashed."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        message = "Input should be a valid string, unable to parse raw data as a unicode string"
        raise refuse(message) from None


# -- readers ------------------------------------------------------------------------------------------------
def text(*, pattern: str | None = None, min_length: int | None = None, max_length: int | None = None
         ) -> Reader:
    """A string, then its length, then its pattern (each refusal in the order it was checked before).

    ``pattern`` is matched as a whole (``$`` does not accept a trailing newline); ``\\S`` means anything
    but Unicode white space.
    """
    compiled = re.compile(pattern.replace(r"\S", f"[^{_WHITE_SPACE}]")) if pattern is not None else None

    def read(value: Any) -> str:
        if not isinstance(value, str):
            raise refuse("Input should be a valid string")
        check_unicode(value)
        if min_length is not None and len(value) < min_length:
            raise refuse(f"String should have at least {_plural(min_length, 'character')}")
        if max_length is not None and len(value) > max_length:
            raise refuse(f"String should have at most {_plural(max_length, 'character')}")
        if compiled is not None and not compiled.fullmatch(value):
            raise refuse(f"String should match pattern '{pattern}'")
        return value

    return read


def optional(reader: Reader) -> Reader:
    """``null`` is ``None``; anything else goes to ``reader``."""

    def read(value: Any) -> Any:
        return None if value is None else reader(value)

    return read


def choice(options: Sequence[str]) -> Reader:
    """One of ``options`` exactly."""
    quoted = [f"'{option}'" for option in options]
    message = "Input should be " + (", ".join(quoted[:-1]) + " or " if len(quoted) > 1 else "") + quoted[-1]

    def read(value: Any) -> str:
        if isinstance(value, str):
            check_unicode(value)
        if not isinstance(value, str) or value not in options:
            raise refuse(message)
        return value

    return read


def _is_i64(number: float) -> bool:
    """A whole number a 64-bit integer holds (what a number had to be to be read as a boolean)."""
    return (isinstance(number, int) or number.is_integer()) and -(2**63) <= number < 2**63


def boolean(value: Any) -> bool:
    """``true``/``false``, ``0``/``1``, and the words ``yes``, ``no``, ``on``, ``off``, ``t``, ``f`` …"""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and _is_i64(value):
        if value in (0, 1):
            return bool(value)
        raise refuse("Input should be a valid boolean, unable to interpret input")
    if isinstance(value, str):
        check_unicode(value)
        lowered = value.lower()
        if lowered in _TRUE or lowered in _FALSE:
            return lowered in _TRUE
        raise refuse("Input should be a valid boolean, unable to interpret input")
    raise refuse("Input should be a valid boolean")


def integer(value: Any) -> int:
    """Whole numbers as JSON numbers, booleans or decimal text (``" 256 "``, ``"1_000"``, ``"256.0"``)."""
    if isinstance(value, bool | int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise refuse("Input should be a finite number")
        if not value.is_integer():
            raise refuse("Input should be a valid integer, got a number with a fractional part")
        if not -(2.0**63) <= value <= 2.0**63:
            raise refuse("Unable to parse input string as an integer, exceeded maximum size")
        return int(value)
    if isinstance(value, str):
        check_unicode(value)
        digits = value.strip(_STRIP)
        if len(digits) > _MAX_INT_TEXT:
            raise refuse("Unable to parse input string as an integer, exceeded maximum size")
        if _DECIMAL.fullmatch(digits):
            return int(digits.replace("_", ""))
        zeros = _DECIMAL_ZEROS.fullmatch(digits)
        if zeros:
            return int(zeros.group(1))
        raise refuse("Input should be a valid integer, unable to parse string as an integer")
    raise refuse("Input should be a valid integer")


def bounded(minimum: int, maximum: int) -> Reader:
    """An :func:`integer` in ``minimum..maximum``."""

    def read(value: Any) -> int:
        number = integer(value)
        if number < minimum:
            raise refuse(f"Input should be greater than or equal to {minimum}")
        if number > maximum:
            raise refuse(f"Input should be less than or equal to {maximum}")
        return number

    return read


def list_of(item: Reader, max_items: int | None = None) -> Reader:
    """A list of ``item``; a list longer than ``max_items`` is refused for that alone."""

    def read(value: Any) -> list[Any]:
        if not isinstance(value, list | tuple):
            raise refuse("Input should be a valid list")
        if max_items is not None and len(value) > max_items:
            raise refuse(f"List should have at most {_plural(max_items, 'item')} after validation, "
                         f"not {len(value)}")
        result, errors = [], []
        for index, element in enumerate(value):
            try:
                result.append(item(element))
            except Refused as refused:
                errors.extend(under(index, refused.errors))
        if errors:
            raise Refused(*errors)
        return result

    return read


def mapping_of(key: Reader, item: Reader, max_items: int | None = None) -> Reader:
    """An object of ``key`` → ``item``. A refused key is located at ``<key>.[key]``; only accepted entries
    count towards ``max_items``, and exceeding it is then the only error."""

    def read(value: Any) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise refuse("Input should be a valid dictionary")
        result, errors = {}, []
        for name, element in value.items():
            accepted = True
            try:
                checked_key = key(name)
            except Refused as refused:
                errors.extend(under(name, under("[key]", refused.errors)))
                accepted = False
            try:
                checked_value = item(element)
            except Refused as refused:
                errors.extend(under(name, refused.errors))
                accepted = False
            if accepted:
                result[checked_key] = checked_value
        if max_items is not None and len(result) > max_items:
            raise refuse(f"Dictionary should have at most {_plural(max_items, 'item')} after validation, "
                         "not more")
        if errors:
            raise Refused(*errors)
        return result

    return read


def union_of(*members: tuple[str, Reader]) -> Reader:
    """The first member that accepts the value; when none does, every member's refusal under its name
    (``packages.dict[str,str]: …; packages.list[str]: …``)."""

    def read(value: Any) -> Any:
        errors: list[FieldError] = []
        for name, reader in members:
            try:
                return reader(value)
            except Refused as refused:
                errors.extend(under(name, refused.errors))
        raise Refused(*errors)

    return read


def read_object(body: object, readers: Mapping[str, tuple[Reader, bool]]) -> dict[str, Any]:
    """The fields of ``body`` that ``readers`` (name → (reader, required)) know, each read; unknown fields
    are ignored, absent optional ones left out. :class:`InvalidRequest` names every refused field."""
    if not isinstance(body, Mapping):
        raise InvalidRequest(
            [FieldError((), "Input should be a valid dictionary or object to extract fields from")])
    values: dict[str, Any] = {}
    errors: list[FieldError] = []
    for name, (reader, required) in readers.items():
        if name not in body:
            if required:
                errors.append(FieldError((name,), "Field required"))
            continue
        try:
            values[name] = reader(body[name])
        except Refused as refused:
            errors.extend(under(name, refused.errors))
    if errors:
        raise InvalidRequest(errors)
    return values


def decode_json_body(data: bytes) -> object:
    """A raw ``application/json`` body decoded (UTF-8, -16 or -32), with the answers given before for
    bodies that are empty (``body: Field required``), not JSON, or not decodable at all."""
    if not data:
        raise InvalidRequest([FieldError((), "Field required")])
    try:
        return json.loads(data)
    except json.JSONDecodeError:
        raise InvalidRequest([], NOT_JSON) from None
    except (ValueError, RecursionError):
        raise InvalidRequest([], UNPARSABLE_BODY) from None
