"""Turn what a client sent into what the server builds.

Decisions (the reference server, openwrt/asu, is the yardstick):

* ``profile``: ``,`` → ``_`` (older LuCI sends the raw ``board_name``).
* ``packages_versions`` without ``packages``: the package list is its keys (owut, auc send only versions).
  When both are sent, the keys win, as in the reference.
* A leading ``+`` on a package name is dropped (the reference strips it too).
* ``package_changes`` are **not** applied to v1 requests: LuCI, owut and auc apply the branch table
  themselves before they POST, and the reference does not rename for them either. Renaming again on the
  server would turn a deliberate request into a different one. The upgrade check applies them
  (``asud.upgrades.package_changes``), so a package list it returns is already renamed.
* ``diff_packages``: when true, every default or device package the client did not request is removed by
  adding ``-name`` for it, exactly as the reference's ``diff_packages``; clients send their complete
  installed top-level list in that mode.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

from asud.build.request import BuildRequest

__all__ = ["diff_packages", "normalise_request"]


def normalise_request(request: BuildRequest) -> BuildRequest:
    """The request with profile and package list in canonical form (used for hashing and the echo)."""
    packages = list(request.packages_versions) if request.packages_versions else list(request.packages)
    packages = [name.removeprefix("+") for name in packages]
    return attrs.evolve(request, profile=request.profile.replace(",", "_"), packages=_unique(packages))


def diff_packages(requested: Sequence[str], default_packages: Iterable[str]) -> list[str]:
    """``requested`` plus ``-name`` for every default/device package not requested (reference semantics)."""
    wanted = {name for name in requested if not name.startswith("-")}
    removals = sorted({name for name in default_packages if not name.startswith("-")} - wanted)
    already_removed = {name[1:] for name in requested if name.startswith("-")}
    return list(requested) + [f"-{name}" for name in removals if name not in already_removed]


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))
