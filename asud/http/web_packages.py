"""Package-name suggestions for the builder's "add a package" field, from the same index validation uses.

Names are offered as a build request may name them: ABI-free (``libubox``, not ``libubox20240329``), plus
virtual names other packages provide (``hostapd``). Ranking: names starting with what was typed (shortest
first, so ``luci`` comes before ``luci-app-adblock``), then names containing it, then close spellings.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from asud.catalog.resolver import PackageIndex

#: Suggestions answered for one query.
DEFAULT_LIMIT = 12


@dataclass(frozen=True, slots=True)
class Suggestion:
    name: str
    version: str
    description: str
    #: The real package behind a virtual name (``hostapd`` → ``wpad-basic-mbedtls``), else empty.
    provided_by: str = ""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "version": self.version, "description": self.description}
        if self.provided_by:
            data["provided_by"] = self.provided_by
        return data


def _describe(index: PackageIndex, name: str) -> Suggestion:
    record = index.get(name)
    if record is None:
        return Suggestion(name, "", "")
    description = record.description.strip().splitlines()[0] if record.description.strip() else ""
    provided_by = "" if name in (record.name, record.stripped_name) else record.stripped_name
    return Suggestion(name, record.version, description[:160], provided_by)


def _installable_names(index: PackageIndex) -> list[str]:
    names = {record.stripped_name for record in index.records}
    names.update(provided for record in index.records for provided in record.provides)
    return sorted(names)


def suggest_packages(index: PackageIndex, query: str, limit: int = DEFAULT_LIMIT) -> list[Suggestion]:
    """Up to ``limit`` names for ``query`` (a leading ``-``, meaning "remove", is ignored)."""
    typed = query.strip().lstrip("-+").lower()
    if not typed:
        return []
    names = _installable_names(index)
    starting = sorted((name for name in names if name.lower().startswith(typed)), key=lambda n: (len(n), n))
    inside = [name for name in names if typed in name.lower() and not name.lower().startswith(typed)]
    chosen = [*starting, *inside][:limit]
    if len(chosen) < limit and len(typed) >= 3:
        close = difflib.get_close_matches(typed, names, n=limit - len(chosen), cutoff=0.7)
        chosen += [name for name in close if name not in chosen]
    return [_describe(index, name) for name in chosen]
