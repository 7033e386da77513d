"""Instant validation: what ``POST /api/v1/build`` would answer about a selection, without queueing it.

The builder sends the exact body it would POST; this runs the same model and the same
``validate_request`` the build route runs, so an unknown name or a conflict shows next to the package
list before anything is queued, in the words the build route would use.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from asud.errors import AsudError, PackageConflict, UnknownPackages
from sysup.api.errors import describe_validation_errors
from sysup.build_requests.models import BuildRequest
from sysup.build_requests.validate import CatalogReader, RequestLimits, validate_request


def check_selection(body: Any, catalog: CatalogReader, limits: RequestLimits) -> dict[str, Any]:
    """``{"ok": True, "request_hash", "manifest", …}`` or ``{"ok": False, "kind", "detail", …}``.

    ``kind`` is ``unknown`` (with ``unknown`` names and their ``suggestions``), ``conflict`` (the
    resolver's reason) or ``invalid`` (anything else the build route would refuse).
    """
    try:
        request = BuildRequest.model_validate(
            body, context={"max_custom_rootfs_size_mb": limits.max_custom_rootfs_size_mb}
        )
    except ValidationError as error:
        return {"ok": False, "kind": "invalid", "detail": describe_validation_errors(error.errors())}
    try:
        validated = validate_request(request, catalog, limits)
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
