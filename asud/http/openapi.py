"""``/openapi.json``: a maintained document (``openapi.json`` beside this module), not generated.

The routes are Klein's and carry no schema, so the document is kept by hand, and a test holds it against
the route map in both directions: every routed operation is documented (except :data:`UNDOCUMENTED`) and
every documented operation is routed (``tests/http/test_openapi.py``). Change a route, change the document.

What it promises is checked by schemathesis against a live daemon (``tests/security/test_schema_fuzz.py``):
every status an operation can answer, with the one error shape all of them share (``detail`` is always a
string; the v1 API adds ``status``, the 2017 API ``error``).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from asud import __version__

__all__ = [
    "DOCUMENT_PATH",
    "UNDOCUMENTED",
    "UNDOCUMENTED_PREFIXES",
    "document",
    "document_bytes",
    "documented_operations",
    "template_of",
]

DOCUMENT_PATH = Path(__file__).with_name("openapi.json")

#: Routes served but deliberately left out of the document: the explorer itself, redirects kept for old
#: LuCI versions (the documented ones are ``/api/v1/overview`` and ``/api/v1/latest``).
UNDOCUMENTED = frozenset({
    "/docs",
    "/docs/assets/{name}",
    "/openapi.json",
    "/api/overview",
    "/api/latest",
    "/overview",
})
#: Path prefixes whose routes are pages for people, not API (the web surface), left out as well.
UNDOCUMENTED_PREFIXES = ("/web/", "/build/", "/about", "/stats")
_PAGES = frozenset({"/"})

_PARAMETER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
_METHODS = ("get", "head", "post", "put", "patch", "delete")


@cache
def document() -> dict[str, Any]:
    """The document, with ``info.version`` set to this asud's version."""
    data: dict[str, Any] = json.loads(DOCUMENT_PATH.read_text(encoding="utf-8"))
    data["info"]["version"] = __version__
    return data


@cache
def document_bytes() -> bytes:
    return json.dumps(document(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def documented_operations() -> set[tuple[str, str]]:
    """``{("GET", "/api/v1/build/{request_hash}"), …}``: every operation of the document."""
    return {
        (method.upper(), path)
        for path, operations in document()["paths"].items()
        for method in operations
        if method in _METHODS
    }


def template_of(werkzeug_rule: str) -> str:
    """A Werkzeug rule (``/store/<string:bin_dir>/<name>``) as an OpenAPI path (``/store/{bin_dir}/…``)."""
    return _PARAMETER.sub(r"{\1}", werkzeug_rule)


def is_undocumented(template: str) -> bool:
    return template in UNDOCUMENTED or template in _PAGES or template.startswith(UNDOCUMENTED_PREFIXES)
