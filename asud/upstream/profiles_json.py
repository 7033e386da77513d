"""``profiles.json`` of a target directory (and the one an ImageBuilder writes into ``BIN_DIR``).

Older files differ from current ones, and all shapes are accepted:
``source_date_epoch`` is a string in 21.02; ``titles`` may be ``[{"title": …}]`` or missing (``title``);
``linux_kernel`` is absent before 23.05.6; ``sha256_unsigned`` is absent before 22.03 (then it equals
``sha256``); ``default_packages`` of early-2021 snapshots repeat names (kept once, in first order).
"""

from __future__ import annotations

from typing import Any

from asud.upstream._json import load_object, require_str, str_tuple
from asud.upstream.errors import UpstreamFormatError
from asud.upstream.records import ImageEntry, LinuxKernel, ProfileEntry, ProfilesDocument

__all__ = ["parse_profile_entry", "parse_profiles_json"]


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise UpstreamFormatError(f"{what} must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise UpstreamFormatError(f"{what} must be an integer, got {value!r}")


def _image(data: Any, where: str) -> ImageEntry:
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise UpstreamFormatError(f"{where}: image without a name")
    sha256 = str(data.get("sha256") or "")
    size = data.get("size")
    return ImageEntry(
        name=data["name"],
        type=str(data.get("type") or ""),
        sha256=sha256,
        sha256_unsigned=str(data.get("sha256_unsigned") or sha256),
        filesystem=data.get("filesystem"),
        size=None if size is None else _int(size, f"{where}: size"),
    )


def _titles(data: dict[str, Any], where: str) -> tuple[dict[str, str], ...]:
    titles = data.get("titles")
    if titles is None:
        title = data.get("title")
        return ({"title": title},) if isinstance(title, str) else ()
    if not isinstance(titles, list) or not all(isinstance(item, dict) for item in titles):
        raise UpstreamFormatError(f"{where}: 'titles' must be a list of objects")
    return tuple({str(k): str(v) for k, v in item.items()} for item in titles)


def parse_profile_entry(profile_id: str, data: Any) -> ProfileEntry:
    """One entry of ``profiles`` (also the shape of a per-image ``json_info_files`` document)."""
    where = f"profiles.json profile {profile_id!r}"
    if not isinstance(data, dict):
        raise UpstreamFormatError(f"{where} is not an object")
    images = data.get("images") or []
    if not isinstance(images, list):
        raise UpstreamFormatError(f"{where}: 'images' must be a list")
    limits = data.get("file_size_limits")
    if limits is not None:
        if not isinstance(limits, dict):
            raise UpstreamFormatError(f"{where}: 'file_size_limits' must be an object")
        limits = {str(k): _int(v, f"{where}: file_size_limits") for k, v in limits.items()}
    return ProfileEntry(
        id=profile_id,
        titles=_titles(data, where),
        device_packages=str_tuple(data.get("device_packages"), f"{where}: device_packages"),
        supported_devices=str_tuple(data.get("supported_devices"), f"{where}: supported_devices"),
        image_prefix=str(data.get("image_prefix") or ""),
        images=tuple(_image(image, where) for image in images),
        file_size_limits=limits,
    )


def _linux_kernel(value: Any) -> LinuxKernel | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(value.get(k), str) for k in ("version", "release",
                                                                                        "vermagic")):
        raise UpstreamFormatError("profiles.json: 'linux_kernel' needs version, release and vermagic")
    return LinuxKernel(version=value["version"], release=value["release"], vermagic=value["vermagic"])


def parse_profiles_json(data: bytes | str) -> ProfilesDocument:
    document = load_object(data, "profiles.json")
    profiles = document.get("profiles")
    if not isinstance(profiles, dict):
        raise UpstreamFormatError("profiles.json: 'profiles' must be an object")
    defaults = str_tuple(document.get("default_packages"), "profiles.json default_packages")
    epoch = document.get("source_date_epoch")
    return ProfilesDocument(
        target=require_str(document, "target", "profiles.json"),
        version_code=require_str(document, "version_code", "profiles.json"),
        version_number=require_str(document, "version_number", "profiles.json"),
        arch_packages=str(document.get("arch_packages") or ""),
        source_date_epoch=0 if epoch is None else _int(epoch, "profiles.json source_date_epoch"),
        default_packages=tuple(dict.fromkeys(defaults)),
        profiles={pid: parse_profile_entry(pid, entry) for pid, entry in profiles.items()},
        metadata_version=_int(document.get("metadata_version", 1), "profiles.json metadata_version"),
        linux_kernel=_linux_kernel(document.get("linux_kernel")),
        raw=document,
    )
