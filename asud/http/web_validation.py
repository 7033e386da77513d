"""Instant validation: what ``POST /api/v1/build`` would answer about a selection, without queueing it.

The builder sends the exact body it would POST; this runs the same parsing and the same
``validate_request`` the build route runs, so an unknown name or a conflict shows next to the package
list before anything is queued, in the words the build route would use.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred

from asud.build.request import InvalidRequest, parse_build_request
from asud.build.validate import CatalogReader, RequestLimits, validate_request
from asud.errors import AsudError, PackageConflict, UnknownPackages
from asud.http.shield import shielded

__all__ = ["check_selection"]


def check_selection(body: object, catalog: CatalogReader, limits: RequestLimits) -> Deferred[dict[str, Any]]:
    """Fires with ``{"ok": True, "request_hash", "manifest", …}`` or ``{"ok": False, "kind", "detail", …}``.

    ``kind`` is ``unknown`` (with ``unknown`` names and their ``suggestions``), ``conflict`` (the
    resolver's reason) or ``invalid`` (anything else the build route would refuse). ``body`` is the
    decoded JSON (``None`` for an empty body).
    """
    return ensureDeferred(_check(body, catalog, limits))


async def _check(body: object, catalog: CatalogReader, limits: RequestLimits) -> dict[str, Any]:
    try:
        request = parse_build_request(body, max_rootfs_size_mb=limits.max_custom_rootfs_size_mb)
    except InvalidRequest as error:
        return {"ok": False, "kind": "invalid", "detail": error.detail}
    try:
        # The package index may be parsed for everybody: a client that goes away must not cancel it.
        validated = await shielded(validate_request(request, catalog, limits))
    except UnknownPackages as error:
        return {
            "ok": False,
            "kind": "unknown",
            "detail": error.detail,
            "unknown": list(error.names),
            "suggestions": {name: list(hints) for name, hints in error.suggestions.items()},
        }
    except PackageConflict as error:
        return {"ok": False, "kind": "conflict", "detail": error.detail}
    except AsudError as error:
        return {"ok": False, "kind": "invalid", "detail": error.detail}
    manifest = validated.manifest
    return {
        "ok": True,
        "request_hash": validated.request_hash,
        "profile": validated.profile,
        "version_code": validated.version_code,
        "build_packages": list(validated.build_packages),
        # apk-era releases are checked by name only; the manifest is known after the build.
        "manifest": manifest,
        "resolved": manifest is not None,
    }
