"""The ``/json/v1`` documents, built from catalog answers (clients-contract §6.6 and §6.1).

Pure functions: values in, JSON-ready dicts out, so the surface (``asud.http.documents``) can cache the
rendered bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import attrs

from asud.upstream.records import ProfileEntry

__all__ = [
    "PATH_PACKAGES",
    "branch_json",
    "build_at",
    "overview_document",
    "package_change_json",
    "profile_document",
    "profile_json",
    "target_top_level",
    "version_paths",
]

#: ``path_packages`` is obsolete upstream but auc requires the key to exist.
PATH_PACKAGES = "DEPRECATED"


def package_change_json(change: Any) -> dict[str, Any]:
    """``{source?, target?, revision, mandatory?}``: no nulls; ``mandatory`` only when true."""
    data: dict[str, Any] = attrs.asdict(change) if attrs.has(type(change)) else dict(change)
    out = {key: value for key, value in data.items() if value is not None and key != "mandatory"}
    if data.get("mandatory"):
        out["mandatory"] = True
    return out


def branch_json(branch: Any) -> dict[str, Any]:
    """One branch object of ``overview.json``/``branches.json`` from a catalog ``BranchInfo``."""
    data: dict[str, Any] = {
        "name": branch.name,
        "enabled": bool(branch.enabled),
        "snapshot": bool(branch.snapshot),
        "path": branch.path,
        "path_packages": PATH_PACKAGES,
        "versions": list(branch.versions),
        "targets": dict(branch.targets),
        "package_changes": [package_change_json(change) for change in branch.package_changes],
    }
    if branch.branch_off_rev is not None:
        data["branch_off_rev"] = branch.branch_off_rev
    return data


def overview_document(
    branches: Mapping[str, Any], latest: list[str], *, upstream_url: str, server: Mapping[str, Any]
) -> dict[str, Any]:
    """``/json/v1/overview.json``: ``branches`` is an object keyed by branch name (LuCI and owut index it)."""
    return {
        "latest": list(latest),
        "upstream_url": upstream_url,
        "server": dict(server),
        "branches": {name: branch_json(branch) for name, branch in branches.items()},
    }


def version_paths(branches: Iterable[Any]) -> dict[str, str]:
    """``{"releases/24.10.4": "24.10.4", "snapshots": "SNAPSHOT", …}``: each branch path with each version."""
    paths: dict[str, str] = {}
    for branch in branches:
        for version in branch.versions:
            paths[branch.path.replace("{version}", version).strip("/")] = version
    return paths


def build_at(source_date_epoch: int | None) -> str:
    """``source_date_epoch`` as the reference formats ``build_at``: ``2025-02-03T22:10:00.000000Z``."""
    moment = datetime.fromtimestamp(int(source_date_epoch or 0), tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def profile_json(profile: ProfileEntry) -> dict[str, Any]:
    """One ``profiles.json`` profile entry as upstream writes it."""
    data: dict[str, Any] = {
        "titles": [dict(title) for title in profile.titles],
        "device_packages": list(profile.device_packages),
        "supported_devices": list(profile.supported_devices),
        "image_prefix": profile.image_prefix,
        "images": [image.to_json() for image in profile.images],
    }
    if profile.file_size_limits is not None:
        data["file_size_limits"] = dict(profile.file_size_limits)
    return data


def profile_document(top_level: Mapping[str, Any], profile: ProfileEntry) -> dict[str, Any]:
    """``/json/v1/{path}/targets/{t}/{s}/{profile}.json`` (what auc reads):
    ``{...profiles.json minus "profiles", ...profiles[profile], "id", "build_at"}``."""
    document = {key: value for key, value in top_level.items() if key != "profiles"}
    document.setdefault("metadata_version", 1)
    document.update(profile_json(profile))
    document["id"] = profile.id
    document["build_at"] = build_at(document.get("source_date_epoch"))
    return document


def target_top_level(info: Any) -> dict[str, Any]:
    """The top-level keys of a catalog ``TargetInfo``'s ``profiles.json``, with the ones auc requires
    always present."""
    top = dict(info.metadata)
    top.setdefault("metadata_version", 1)
    top.setdefault("target", info.target)
    top.setdefault("arch_packages", info.arch_packages)
    top.setdefault("version_code", info.version_code)
    top.setdefault("version_number", info.version)
    top.setdefault("source_date_epoch", info.source_date_epoch)
    return top
