"""Predict what the ImageBuilder will install, so an impossible request is refused before it is queued.

The package list follows the ImageBuilder Makefile (upstream-formats §2.4)::

    BUILD_PACKAGES = sort(DEFAULT_PACKAGES + <profile>_PACKAGES + kernel), minus every -x and x
    BUILD_PACKAGES = USER_PACKAGES + BUILD_PACKAGES,                       minus every -x and x again

and the closure follows opkg: packages are installed in that order, each after its dependencies; a
``Depends`` entry is satisfied by the first alternative that is already installed (by name, ABI-free
name or ``Provides``) with a matching version, else by the first alternative that can be installed —
a real package of that name (the highest version meeting the relation), else the first provider in
index order. ``Conflicts`` between installed packages make the selection impossible.

apk-era indexes (``index.json``: names and versions only) cannot be resolved; for them only the names
are checked (``check_names``), and ``Resolution.complete`` is ``False``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cmp_to_key

from asud.errors import PackageConflict, UnknownPackages
from asud.upstream.records import Dependency, PackageManager, PackageRecord
from asud.upstream.version_order import compare_packages, opkg_satisfies

#: Packages every ImageBuilder carries in its local repository; upstream indexes never list them
#: (``ipkg-make-index.sh`` skips ``kernel_*`` and ``libc_*``).
IMAGEBUILDER_PACKAGES = ("kernel", "libc")

#: The ``make image`` list always gains the kernel.
IMPLICIT_BUILD_PACKAGES = ("kernel",)

_VERSION_OPS = ("<<", "<=", ">=", ">>", "==", "=", "<", ">")


class PackageIndex:
    """Every package a build can install: target packages, kmods and the arch feeds, in feed order.

    Lookups go by full name (``libubox20240329``), ABI-free name (``libubox``) and provided name.
    A record with an empty ``version`` stands for a package whose version is not known here (the
    ImageBuilder's own ``kernel``/``libc``); it satisfies every version relation.
    """

    def __init__(self, records: Sequence[PackageRecord], package_manager: PackageManager = "opkg") -> None:
        self.records = tuple(records)
        self.package_manager: PackageManager = package_manager
        self._by_name: dict[str, list[PackageRecord]] = {}
        self._by_stripped: dict[str, list[PackageRecord]] = {}
        self._providers: dict[str, list[PackageRecord]] = {}
        #: ``id(record)`` → every name the record answers to (name, ABI-free name, provided names),
        #: worked out once here rather than at every install of every resolution.
        self._answers_to: dict[int, tuple[str, ...]] = {}
        for record in self.records:
            self._by_name.setdefault(record.name, []).append(record)
            stripped = record.stripped_name
            if stripped != record.name:
                self._by_stripped.setdefault(stripped, []).append(record)
            for provided in record.provides:
                self._providers.setdefault(provided, []).append(record)
            self._answers_to[id(record)] = tuple(dict.fromkeys((record.name, stripped, *record.provides)))
        #: ``named`` answers, best version first, sorted on first use (the index never changes; two
        #: threads sorting the same name at once store equal lists).
        self._sorted: dict[str, tuple[PackageRecord, ...]] = {}
        self._by_length: dict[int, list[str]] | None = None

    def __len__(self) -> int:
        return len(self.records)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (
            name in self._by_name or name in self._by_stripped or name in self._providers
        )

    @property
    def detailed(self) -> bool:
        """Whether records carry dependencies (opkg ``Packages``) rather than only names (apk)."""
        return self.package_manager == "opkg"

    def named(self, name: str) -> list[PackageRecord]:
        """Records whose name (or ABI-free name) is ``name``, best version first."""
        return list(self._named(name))

    def _named(self, name: str) -> tuple[PackageRecord, ...]:
        """``named`` without the copy, for the resolver (which only reads it)."""
        found = self._sorted.get(name)
        if found is not None:
            return found
        candidates = self._by_name.get(name) or self._by_stripped.get(name) or []
        if len(candidates) < 2:
            return tuple(candidates)
        manager = self.package_manager
        key = cmp_to_key(lambda a, b: compare_packages(a.version, b.version, manager))
        found = self._sorted[name] = tuple(sorted(candidates, key=key, reverse=True))
        return found

    def answers_to(self, record: PackageRecord) -> tuple[str, ...]:
        """The names ``record`` answers to: its name, ABI-free name and provided names."""
        names = self._answers_to.get(id(record))
        if names is None:  # not one of this index's records
            names = tuple(dict.fromkeys((record.name, record.stripped_name, *record.provides)))
        return names

    def providers(self, name: str) -> list[PackageRecord]:
        """Records that list ``name`` in ``Provides``, in index order."""
        return list(self._providers.get(name, ()))

    def get(self, name: str) -> PackageRecord | None:
        """The record ``name`` resolves to: best real package of that name, else the first provider."""
        named = self._named(name)
        if named:
            return named[0]
        providers = self._providers.get(name)
        return providers[0] if providers else None

    def versions(self, *, strip_abi: bool = True) -> dict[str, str]:
        """Flat ``name → version`` (the best version where a name appears in several feeds)."""
        flat: dict[str, str] = {}
        for record in self.records:
            name = record.stripped_name if strip_abi else record.name
            current = flat.get(name)
            if current is None or compare_packages(record.version, current, self.package_manager) > 0:
                flat[name] = record.version
        return flat

    def known_names(self) -> set[str]:
        return set(self._by_name) | set(self._by_stripped) | set(self._providers)

    def suggestions(self, name: str, limit: int = 3) -> list[str]:
        """Close matches for an unknown name (typos, missing ``luci-app-`` prefixes …).

        ``difflib.get_close_matches`` over the names whose length can match at all: its first test,
        ``real_quick_ratio``, depends on the two lengths only, so leaving out the names it would refuse
        gives the same answer, without comparing ``name`` with 10,000 names at real scale.
        """
        if self._by_length is None:  # names by length, worked out once, not per refusal
            by_length: dict[int, list[str]] = {}
            for known in sorted(self.known_names()):
                by_length.setdefault(len(known), []).append(known)
            self._by_length = by_length
        length = len(name)
        candidates = [
            known
            for known_length, names in self._by_length.items()
            if _length_ratio(known_length, length) >= _SUGGESTION_CUTOFF
            for known in names
        ]
        return difflib.get_close_matches(name, candidates, n=limit, cutoff=_SUGGESTION_CUTOFF)


#: Unknown names of one request that get suggestions, the first ones (a typo's suggestions can cost
#: ~100 ms at real scale: a body of hundreds of made-up names must not buy seconds of CPU).
SUGGESTED_NAMES = 5

#: How close a suggested name must be (``difflib`` ratio).
_SUGGESTION_CUTOFF = 0.75


def _length_ratio(a: int, b: int) -> float:
    """``SequenceMatcher.real_quick_ratio`` of two strings of lengths ``a`` and ``b`` (same arithmetic)."""
    return 2.0 * min(a, b) / (a + b) if a + b else 1.0


@dataclass(frozen=True)
class Resolution:
    """What the ImageBuilder is predicted to install.

    ``manifest`` maps names (ABI-free with ``strip_abi``) to versions, as ``make manifest STRIP_ABI=1``
    prints them; ``top_level`` is the package list handed to the package manager (removals applied);
    ``complete`` is ``False`` when only names could be checked (apk-era index) and ``manifest`` then
    covers only ``top_level``.
    """

    manifest: dict[str, str]
    installed: list[PackageRecord]
    top_level: list[str]
    complete: bool = True
    #: Top-level names that resolved through ``Provides`` to a differently named package.
    provided_by: dict[str, str] = field(default_factory=dict)


def build_package_list(
    default_packages: Iterable[str], profile_packages: Iterable[str], requested: Iterable[str]
) -> list[str]:
    """The ImageBuilder's ``BUILD_PACKAGES``: user packages first, removals applied in two passes,
    duplicates dropped (the package manager installs a name once)."""
    base = sorted({*default_packages, *profile_packages, *IMPLICIT_BUILD_PACKAGES})
    base = _apply_removals(base)
    combined = _apply_removals([*requested, *base])
    seen: set[str] = set()
    ordered = []
    for name in combined:
        if name and name not in seen:
            seen.add(name)
            ordered.append(name)
    return ordered


def _apply_removals(names: list[str]) -> list[str]:
    removed = {name[1:] for name in names if name.startswith("-")}
    return [name for name in names if not name.startswith("-") and name not in removed]


def _plain_name(requested: str) -> str:
    """``luci``, ``luci=1.0`` and ``luci>=1.0`` (apk constraints) all name ``luci``."""
    if "=" not in requested and "<" not in requested and ">" not in requested:
        return requested  # nearly every name: skip the eight searches below
    for op in _VERSION_OPS:
        if op in requested:
            return requested.split(op, 1)[0]
    return requested


def check_names(index: PackageIndex, names: Iterable[str]) -> None:
    """Raise ``UnknownPackages`` (with suggestions) for names no record has or provides.

    Removals (``-x``) are not checked: the ImageBuilder ignores removing what is not there.
    """
    unknown = []
    for name in names:
        if name.startswith("-"):
            continue
        plain = _plain_name(name)
        if plain and plain not in index and plain not in unknown:
            unknown.append(plain)
    if unknown:
        suggested = unknown[:SUGGESTED_NAMES]
        raise UnknownPackages(unknown, {name: index.suggestions(name) for name in suggested})


def resolve(
    index: PackageIndex,
    *,
    default_packages: Iterable[str],
    profile_packages: Iterable[str],
    requested: Iterable[str],
    strip_abi: bool = True,
) -> Resolution:
    """Predict the installed set of a build; raise ``UnknownPackages`` or ``PackageConflict``."""
    top_level = build_package_list(default_packages, profile_packages, requested)
    check_names(index, top_level)
    if not index.detailed:
        installed = [record for name in top_level if (record := index.get(_plain_name(name)))]
        return Resolution(
            manifest=_manifest(installed, strip_abi), installed=installed, top_level=top_level, complete=False
        )
    solver = _Solver(index)
    # The ImageBuilder installs its own libc and kernel before the package list.
    for name in IMAGEBUILDER_PACKAGES:
        if name in index:
            solver.install_name(name)
    provided_by = {}
    for name in top_level:
        record = solver.install_name(name)
        if record.name != name and record.stripped_name != name:
            provided_by[name] = record.name
    solver.check_conflicts()
    return Resolution(
        manifest=_manifest(solver.installed, strip_abi),
        installed=solver.installed,
        top_level=top_level,
        provided_by=provided_by,
    )


def _manifest(records: Iterable[PackageRecord], strip_abi: bool) -> dict[str, str]:
    entries = {(record.stripped_name if strip_abi else record.name): record.version for record in records}
    return dict(sorted(entries.items()))


def _describe(dep: Dependency) -> str:
    return f"{dep.name} ({dep.op} {dep.version})" if dep.op and dep.version else dep.name


class _Solver:
    """opkg's install order: each package after its dependencies, in request order."""

    def __init__(self, index: PackageIndex) -> None:
        self.index = index
        self.installed: list[PackageRecord] = []
        self._installed_ids: set[int] = set()
        #: name / ABI-free name / provided name → installed records answering to it.
        self._answers: dict[str, list[PackageRecord]] = {}
        #: Names of the packages on the current install path (a dependency cycle stops there).
        self._chain: set[str] = set()

    def _satisfies(self, record: PackageRecord, dep: Dependency) -> bool:
        if not dep.op or not dep.version or not record.version:
            return True
        return opkg_satisfies(record.version, dep.op, dep.version)

    def _mark(self, record: PackageRecord) -> None:
        self.installed.append(record)
        self._installed_ids.add(id(record))
        answers = self._answers
        for name in self.index.answers_to(record):
            found = answers.get(name)
            if found is None:
                answers[name] = [record]
            else:
                found.append(record)

    def install_name(self, name: str) -> PackageRecord:
        """Install a top-level name (known to exist) and return the record chosen for it: an installed
        package answering to the name (itself first, then a provider), else what the index offers."""
        plain = _plain_name(name)
        answers = self._answers.get(plain, ())
        for record in answers:
            if record.name == plain or record.stripped_name == plain:
                return record
        if answers:
            return answers[0]
        record = self.index.get(plain)
        assert record is not None, plain
        self._install(record)
        return record

    def _install(self, record: PackageRecord) -> None:
        # Hot: every package of every resolution passes here; loops written out, no generators.
        installed = self._installed_ids
        chain = self._chain
        if id(record) in installed or record.name in chain:
            return
        chain.add(record.name)
        try:
            for group in record.depends:
                if not self._group_installed(group):
                    self._install(self._choose(record, group))
        finally:
            chain.discard(record.name)
        if id(record) not in installed:
            self._mark(record)

    def _group_installed(self, group: tuple[Dependency, ...]) -> bool:
        """Whether an installed package already satisfies one alternative of ``group``."""
        answers = self._answers
        for dep in group:
            found = answers.get(dep.name)
            if not found:
                continue
            if not dep.op or not dep.version:
                return True
            for record in found:
                if self._satisfies(record, dep):
                    return True
        return False

    def _choose(self, dependent: PackageRecord, group: tuple[Dependency, ...]) -> PackageRecord:
        for dep in group:
            named = [record for record in self.index._named(dep.name) if self._satisfies(record, dep)]
            if named:
                return named[0]
            providers = [record for record in self.index.providers(dep.name) if self._satisfies(record, dep)]
            if providers:
                return providers[0]
        raise PackageConflict(self._unsatisfiable(dependent, group))

    def _unsatisfiable(self, dependent: PackageRecord, group: tuple[Dependency, ...]) -> str:
        wanted = " | ".join(_describe(dep) for dep in group)
        available = []
        for dep in group:
            available += [record.version for record in self.index.named(dep.name)]
            available += [record.version for record in self.index.providers(dep.name)]
        name = dependent.stripped_name
        if not available:
            return f"{name} depends on {wanted}, which no package index provides"
        return f"{name} depends on {wanted} but only {', '.join(dict.fromkeys(available))} is available"

    def check_conflicts(self) -> None:
        """``Conflicts: x`` clashes with an installed package named ``x`` or providing ``x``."""
        for record in self.installed:
            for conflict in record.conflicts:
                for other in self._answers.get(conflict, ()):
                    if other is not record:
                        raise PackageConflict(f"{record.stripped_name} conflicts with {other.stripped_name}")
