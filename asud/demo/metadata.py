"""The JSON documents of the download server: ``.versions.json``, ``.targets.json``, ``.overview.json``
and each target's ``profiles.json``.

The firmware images that ``profiles.json`` names are not part of the demo tree (building them takes the
ImageBuilder); their hashes and sizes are deterministic stand-ins.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from asud.demo.devices import DeviceDef, TargetDef
from asud.demo.releases import OLDSTABLE_VERSION, STABLE_VERSION, Release

__all__ = ["overview_json", "profiles_json", "targets_json", "versions_json"]


def _dump(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def versions_json(
    releases: Sequence[Release], stable: str = STABLE_VERSION, oldstable: str = OLDSTABLE_VERSION
) -> bytes:
    """``/.versions.json``; ``versions_list`` newest first, SNAPSHOT left out (as upstream)."""
    listed = [release.version for release in releases if not release.is_snapshot]
    listed.sort(key=lambda version: tuple(int(part) for part in version.split(".")), reverse=True)
    return _dump(
        {
            "stable_version": stable,
            "oldstable_version": oldstable,
            "upcoming_version": "",
            "versions_list": listed,
        }
    )


def targets_json(targets: Sequence[TargetDef]) -> bytes:
    """``<release>/.targets.json``: ``{"target/subtarget": arch_packages}``."""
    return _dump({target.target: target.arch_packages for target in targets})


def overview_json(release: Release, targets: Sequence[TargetDef]) -> bytes:
    """``<release>/.overview.json``, the device list the Firmware Selector loads."""
    profiles = [
        {"id": device.id, "target": target.target, "titles": list(device.titles)}
        for target in targets
        for device in target.devices
    ]
    return _dump({"release": release.version, "profiles": profiles})


def _stand_in_hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _profile(release: Release, target: TargetDef, device: DeviceDef) -> dict[str, Any]:
    image_prefix = f"{release.image_prefix(target.target)}-{device.id}"
    images = []
    for image in device.images:
        name = f"{image_prefix}-{image.suffix}"
        signed = _stand_in_hash(release.revision, name)
        unsigned = (
            _stand_in_hash(release.revision, name, "unsigned") if image.type == "sysupgrade" else signed
        )
        entry: dict[str, Any] = {
            "filesystem": image.filesystem,
            "name": name,
            "sha256": signed,
            "sha256_unsigned": unsigned,
            "type": image.type,
        }
        if release.profiles_sizes:
            entry["size"] = 4 * 1024 * 1024 + int(signed[:5], 16)
        images.append(entry)
    profile: dict[str, Any] = {
        "device_packages": list(device.device_packages),
        "image_prefix": image_prefix,
        "images": images,
        "supported_devices": list(device.supported_devices),
        "titles": list(device.titles),
    }
    if release.profiles_sizes and device.image_limit is not None:
        profile["file_size_limits"] = {"image": device.image_limit}
    return profile


def profiles_json(release: Release, target: TargetDef) -> bytes:
    """``targets/<t>/<s>/profiles.json``: compact, sorted keys, as ``json_overview_image_info.py``."""
    document: dict[str, Any] = {
        "arch_packages": target.arch_packages,
        "default_packages": sorted(target.default_packages(release)),
        "metadata_version": 1,
        "profiles": {device.id: _profile(release, target, device) for device in target.devices},
        "source_date_epoch": release.source_date_epoch,
        "target": target.target,
        "version_code": release.revision,
        "version_number": release.version,
    }
    if release.kmods_split:
        kernel = release.linux_kernel(target.target)
        document["linux_kernel"] = {
            "release": kernel.release,
            "vermagic": kernel.vermagic,
            "version": kernel.version,
        }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
