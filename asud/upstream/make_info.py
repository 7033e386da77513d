"""What ``make info`` prints: target, architecture, revision, default packages and profiles.

```
Current Target: "ath79/generic"
Current Architecture: "mips"              (absent before 22.03)
Current Revision: "r28959-…"
Default Packages: base-files busybox …     (build order, not sorted)
Available Profiles:

8dev_carambola2:
    8devices Carambola2                    (only when the profile has a title)
    Packages: kmod-usb2 -swconfig
    hasImageMetadata: 1
    SupportedDevices: 8dev,carambola2 carambola2   (only when non-empty)
```
"""

from __future__ import annotations

from asud.upstream.errors import UpstreamFormatError
from asud.upstream.records import MakeInfo, MakeInfoProfile

__all__ = ["parse_make_info"]


def _quoted(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


class _Profile:
    __slots__ = ("has_image_metadata", "id", "packages", "supported_devices", "title")

    def __init__(self, profile_id: str) -> None:
        self.id = profile_id
        self.title = ""
        self.packages: tuple[str, ...] = ()
        self.has_image_metadata = False
        self.supported_devices: tuple[str, ...] = ()

    def freeze(self) -> MakeInfoProfile:
        return MakeInfoProfile(id=self.id, title=self.title, packages=self.packages,
                               has_image_metadata=self.has_image_metadata,
                               supported_devices=self.supported_devices)


def parse_make_info(text: str) -> MakeInfo:
    header: dict[str, str] = {}
    profiles: list[_Profile] = []
    in_profiles = False
    for line in text.splitlines():
        if not line.strip():
            continue
        if not in_profiles:
            key, colon, value = line.partition(":")
            if not colon:
                continue
            if key == "Available Profiles":
                in_profiles = True
            else:
                header[key.strip()] = value.strip()
            continue
        if line[0] not in " \t":
            if not line.endswith(":"):
                raise UpstreamFormatError(f"make info: unexpected line {line!r}")
            profiles.append(_Profile(line[:-1].strip()))
            continue
        if not profiles:
            raise UpstreamFormatError(f"make info: indented line before any profile: {line!r}")
        profile = profiles[-1]
        content = line.strip()
        key, colon, value = content.partition(": ")
        if (key == "Packages" and colon) or content == "Packages:":
            profile.packages = tuple(value.split())
        elif key == "hasImageMetadata" and colon:
            profile.has_image_metadata = value.strip() == "1"
        elif (key == "SupportedDevices" and colon) or content == "SupportedDevices:":
            profile.supported_devices = tuple(value.split())
        elif not profile.title and not profile.packages:
            profile.title = content
    if "Current Target" not in header or "Current Revision" not in header:
        raise UpstreamFormatError("make info: no 'Current Target'/'Current Revision' line")
    architecture = header.get("Current Architecture")
    return MakeInfo(
        target=_quoted(header["Current Target"]),
        revision=_quoted(header["Current Revision"]),
        default_packages=tuple(header.get("Default Packages", "").split()),
        profiles={profile.id: profile.freeze() for profile in profiles},
        architecture=None if architecture is None else _quoted(architecture),
    )
