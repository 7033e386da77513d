"""An upgrade-check request in canonical form, read from the 2017 or the v1 JSON, and its hash.

The 2017 API took ``target`` + ``subtarget`` (2019 clients: ``target: "ath79/generic"`` alone),
``packages`` or ``installed`` (name → version; a plain list of names is accepted too), ``revision``, and a
case-insensitive ``distro`` (``LEDE`` means openwrt). Both APIs hash the same canonical request, so a
check stored by one can be read back by either.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from asud.errors import BadRequest
from sysup.config import DistroSettings

__all__ = [
    "MissingField",
    "UpgradeCheckRequest",
    "normalise_version",
    "parse_legacy_request",
    "parse_packages",
    "resolve_distro",
]

#: Distribution names clients used before the LEDE project merged back into OpenWrt.
BUILTIN_ALIASES = {"lede": "openwrt"}


class MissingField(BadRequest):
    """A required request field is absent (the 2017 API names it in ``X-Missing-Param``)."""

    def __init__(self, field: str) -> None:
        super().__init__(f"Missing parameter: {field}")
        self.field = field


@dataclass(frozen=True)
class UpgradeCheckRequest:
    """What a device sent: its distribution (resolved), version, ``target/subtarget``, installed packages
    (``None``: check the version only) and installed revision."""

    distro: str
    version: str
    target: str
    packages: dict[str, str] | None = None
    revision: str | None = None

    @property
    def request_hash(self) -> str:
        """64 hex digits over the canonical JSON of every field (sorted keys, packages sorted by name)."""
        document = {
            "distro": self.distro,
            "version": self.version,
            "target": self.target,
            "packages": dict(sorted(self.packages.items())) if self.packages is not None else None,
            "revision": self.revision,
        }
        canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def resolve_distro(name: str | None, distros: Mapping[str, DistroSettings], default: str) -> str:
    """The configured distribution a client means: case-insensitive, through each distribution's
    ``aliases`` and ``lede`` → ``openwrt``; ``BadRequest`` when none matches."""
    wanted = (name or default).strip().lower()
    if wanted in distros:
        return wanted
    for distro, settings in distros.items():
        if wanted in (alias.lower() for alias in settings.aliases):
            return distro
    builtin = BUILTIN_ALIASES.get(wanted)
    if builtin in distros:
        return builtin
    raise BadRequest(f"Unsupported distro: {name}")


def _text(body: Mapping[str, Any], field: str) -> str | None:
    value = body.get(field)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadRequest(f"Invalid parameter: {field} must be a string")
    return value.strip()


def parse_packages(value: Any, field: str) -> dict[str, str] | None:
    """``{name: version}``, or a list of names (versions unknown); ``None`` when absent."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) and isinstance(v, str | None) for k, v in value.items()):
            raise BadRequest(f"Invalid parameter: {field} must map package names to versions")
        return {name.strip(): (version or "").strip() for name, version in value.items() if name.strip()}
    if isinstance(value, list):
        if not all(isinstance(name, str) for name in value):
            raise BadRequest(f"Invalid parameter: {field} must list package names")
        return {name.strip(): "" for name in value if name.strip()}
    raise BadRequest(f"Invalid parameter: {field} must be an object of package versions")


def normalise_version(version: str) -> str:
    """``snapshot`` → ``SNAPSHOT``, ``24.10-snapshot`` → ``24.10-SNAPSHOT``; releases unchanged."""
    if version.upper().endswith("SNAPSHOT"):
        return version[: -len("SNAPSHOT")] + "SNAPSHOT"
    return version


def parse_legacy_request(
    body: Any, distros: Mapping[str, DistroSettings], default_distro: str
) -> UpgradeCheckRequest:
    """Read a 2017/2019 ``POST /api/upgrade-check`` body; ``MissingField`` names the first absent field."""
    if not isinstance(body, Mapping):
        raise BadRequest("The request body must be a JSON object")
    distro = resolve_distro(_text(body, "distro"), distros, default_distro)
    version = _text(body, "version")
    if version is None:
        raise MissingField("version")
    target = _text(body, "target")
    if target is None:
        raise MissingField("target")
    if "/" not in target:
        subtarget = _text(body, "subtarget")
        if subtarget is None:
            raise MissingField("subtarget")
        target = f"{target}/{subtarget}"
    field = "packages" if body.get("packages") is not None else "installed"
    return UpgradeCheckRequest(
        distro=distro,
        version=normalise_version(version),
        target=target,
        packages=parse_packages(body.get(field), field),
        revision=_text(body, "revision"),
    )
