"""Carry an installed package list across releases: renames, removals and additions.

The table is the one clients read from ``/json/v1/overview.json`` (``branches[b].package_changes``).
A change applies to an upgrade when the installed system predates it and the new one includes it, i.e.
``from_revision < change.revision <= to_revision``. ``source`` and ``target``: rename (when ``source``
is installed); ``source`` alone: remove; ``target`` alone: add (clients-contract §6.6 — LuCI, owut and
auc all read ``source`` without ``target`` as a removal).
"""

from __future__ import annotations

from collections.abc import Iterable

from asud.config import PackageChange

__all__ = ["applicable_changes", "apply_package_changes"]


def applicable_changes(
    changes: Iterable[PackageChange], from_revision: int | None, to_revision: int | None
) -> list[PackageChange]:
    """Changes with ``from_revision < revision <= to_revision``, oldest first; a ``None`` bound is open."""
    selected = [
        change
        for change in changes
        if (from_revision is None or change.revision > from_revision)
        and (to_revision is None or change.revision <= to_revision)
    ]
    return sorted(selected, key=lambda change: change.revision)


def apply_package_changes(
    packages: list[str], changes: Iterable[PackageChange], from_revision: int | None, to_revision: int | None
) -> list[str]:
    """``packages`` as the newer release names them; order kept, renamed packages stay in place, additions
    go at the end, and no name appears twice. The input list is not modified."""
    result = list(dict.fromkeys(packages))
    for change in applicable_changes(changes, from_revision, to_revision):
        if change.source and change.source in result:
            position = result.index(change.source)
            if change.target and change.target not in result:
                result[position] = change.target
            else:
                del result[position]
        elif change.target and not change.source and change.target not in result:
            result.append(change.target)
    return result
