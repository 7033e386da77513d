"""An upgrade-check request in canonical form, read from the 2017 or the v1 JSON, and its hash.

The 2017 API took ``target`` + ``subtarget`` (2019 clients: ``target: "ath79/generic"`` alone),
``packages`` or ``installed`` (name → version; a plain list of names is accepted too), ``revision``, and a
case-insensitive ``distro`` (``LEDE`` means openwrt). Both APIs hash the same canonical request, so a
check stored by one can be read back by either.

:func:`body_text`, :func:`required_text` and :func:`read_target` read the loosely typed 2017 bodies (the
upgrade check here, the 2017 build routes in ``asud.http``): one owner for those rules.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import attrs

from asud.build.fields import Reader, list_of, mapping_of, optional, read_object, text, union_of
from asud.config import DistroSettings
from asud.errors import BadRequest

__all__ = [
    "BUILTIN_ALIASES",
    "V1_TARGET_PATTERN",
    "MissingField",
    "UpgradeCheckRequest",
    "body_text",
    "normalise_version",
    "parse_legacy_request",
    "parse_packages",
    "parse_v1_request",
    "read_target",
    "required_text",
    "resolve_distro",
]

#: Distribution names clients used before the LEDE project merged back into OpenWrt.
BUILTIN_ALIASES = {"lede": "openwrt"}

#: ``target`` of a v1 upgrade check: ``ath79/generic``.
V1_TARGET_PATTERN = r"^[\w.-]+/[\w.-]+$"


class MissingField(BadRequest):
    """A required request field is absent (the 2017 API names it in ``X-Missing-Param``)."""

    def __init__(self, field: str) -> None:
        super().__init__(f"Missing parameter: {field}")
        self.field = field


@attrs.frozen(kw_only=True)
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


def body_text(body: Mapping[str, Any], field: str) -> str | None:
    """A 2017-API text field, stripped; ``None`` when absent, ``null`` or empty."""
    value = body.get(field)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadRequest(f"Invalid parameter: {field} must be a string")
    return value.strip()


def required_text(body: Mapping[str, Any], field: str) -> str:
    """:func:`body_text`, or :class:`MissingField` naming ``field``."""
    value = body_text(body, field)
    if value is None:
        raise MissingField(field)
    return value


def read_target(body: Mapping[str, Any]) -> str:
    """``target`` + ``subtarget``, or a 2019 client's ``target: "ath79/generic"`` alone."""
    target = required_text(body, "target")
    if "/" in target:
        return target
    return f"{target}/{required_text(body, 'subtarget')}"


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
    distro = resolve_distro(body_text(body, "distro"), distros, default_distro)
    version = required_text(body, "version")
    target = read_target(body)
    field = "packages" if body.get("packages") is not None else "installed"
    return UpgradeCheckRequest(
        distro=distro,
        version=normalise_version(version),
        target=target,
        packages=parse_packages(body.get(field), field),
        revision=body_text(body, "revision"),
    )


#: Any string (lone surrogates refused: the old model let them through to a 500).
_any_text = text()
_V1_READERS: dict[str, tuple[Reader, bool]] = {
    "distro": (_any_text, False),
    "version": (_any_text, True),
    "target": (text(pattern=V1_TARGET_PATTERN), True),
    "packages": (
        optional(union_of(("dict[str,str]", mapping_of(_any_text, _any_text)),
                          ("list[str]", list_of(_any_text)))),
        False,
    ),
    "revision": (optional(_any_text), False),
}


def parse_v1_request(
    body: object, distros: Mapping[str, DistroSettings], default_distro: str
) -> UpgradeCheckRequest:
    """Read a ``POST /api/v1/upgrade-check`` body (``distro``, ``version``, ``target``, ``packages`` as
    ``{name: version}`` or a list of names, ``revision``). A malformed body is ``InvalidRequest`` with the
    texts of the previous server; an absent ``distro`` is ``openwrt``, as there."""
    values = read_object(body, _V1_READERS)
    return UpgradeCheckRequest(
        distro=resolve_distro(values.get("distro", "openwrt"), distros, default_distro),
        version=normalise_version(values["version"].strip()),
        target=values["target"],
        packages=parse_packages(values.get("packages"), "packages"),
        revision=values.get("revision") or None,
    )
