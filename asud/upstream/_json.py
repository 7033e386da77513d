"""Reading the JSON documents of a download server, with errors that name the document."""

from __future__ import annotations

from typing import Any

import orjson

from asud.upstream.errors import UpstreamFormatError


def load_object(data: bytes | str, what: str) -> dict[str, Any]:
    """``data`` parsed as a JSON object; ``UpstreamFormatError`` naming ``what`` otherwise."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise UpstreamFormatError(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise UpstreamFormatError(f"{what} is not a JSON object")
    return value


def require_str(document: dict[str, Any], key: str, what: str) -> str:
    value = document.get(key)
    if not isinstance(value, str):
        raise UpstreamFormatError(f"{what}: {key!r} must be a string")
    return value


def str_tuple(value: Any, what: str) -> tuple[str, ...]:
    """A list of strings as a tuple; ``None`` counts as empty (old files leave lists out)."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise UpstreamFormatError(f"{what} must be a list of strings")
    return tuple(value)
