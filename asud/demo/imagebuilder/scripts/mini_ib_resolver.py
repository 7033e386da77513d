"""Dependency resolution with opkg semantics (also used, simplified, for the apk era).

Requests and Depends may name a real package or anything that provides that name (Provides, or the
ABI-free name of an ABI-versioned library). Preference: a provider already selected, else the real
package of that name, else the first provider in index order. Alternatives ``a | b`` take the first
satisfiable one. Conflicts among the selected packages fail the resolution.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from mini_ib_feeds import Feed, Package, Relation, parse_relation
from mini_ib_versions import apk_compare, opkg_compare, satisfies

_APK_TOKEN = re.compile(r"^([^<>=~]+)(?:(<=|>=|<|>|=|~)(.+))?$")


@dataclass
class Problem:
    """Why one request failed: ``kind`` is ``unknown``, ``unsatisfied`` or ``conflict``."""

    kind: str
    package: str
    required_by: str | None = None
    relation: str = ""
    others: list[Package] = field(default_factory=list)
    subject: Package | None = None
    #: the PACKAGES token whose installation hit the problem
    top: str = ""


@dataclass
class Resolution:
    selected: list[Package]
    #: The packages chosen for the requested names (opkg marks them user-installed).
    requested: list[str]
    problems: list[Problem]
    #: The requested names as asked (apk's world file keeps these, provided names included).
    asked: list[str]


class Universe:
    """All packages of all feeds; for each name, the versions and the providers in index order."""

    def __init__(self, feeds: list[Feed], apk: bool) -> None:
        self.apk = apk
        self.by_name: dict[str, list[Package]] = {}
        self.providers: dict[str, list[tuple[Package, str | None]]] = {}
        for feed in feeds:
            for package in feed.packages:
                self.by_name.setdefault(package.name, []).append(package)
                for name, version in package.provided_names():
                    self.providers.setdefault(name, []).append((package, version))
        compare = apk_compare if apk else opkg_compare
        for versions in self.by_name.values():
            # Highest version first; a stable sort keeps feed order for equal versions.
            _sort_desc(versions, compare)

    def all_packages(self) -> list[Package]:
        return [versions[0] for _, versions in sorted(self.by_name.items())]


def _sort_desc(items: list[Package], compare: Callable[[str, str], int]) -> None:
    items.sort(key=functools.cmp_to_key(lambda a, b: compare(b.version, a.version)))


def _relation_text(relation: Relation, apk: bool) -> str:
    name, op, version = relation
    if not op:
        return name
    return f"{name}{op}{version}" if apk else f"{name} ({op} {version})"


class Resolver:
    def __init__(self, universe: Universe) -> None:
        self.universe = universe
        self.selected: dict[str, Package] = {}
        self.selected_provides: dict[str, list[tuple[Package, str | None]]] = {}

    def _ok(self, version: str | None, relation: Relation) -> bool:
        _, op, wanted = relation
        if op and version is None:
            return False
        return satisfies(version or "", op, wanted, self.universe.apk)

    def candidate(self, relation: Relation) -> Package | None:
        """The package that would satisfy ``relation``, by the preference order of the module doc."""
        name = relation[0]
        chosen = self.selected.get(name)
        if chosen and self._ok(chosen.version, relation):
            return chosen
        for package, version in self.selected_provides.get(name, []):
            if self._ok(version if version is not None else package.version, relation):
                return package
        for package in self.universe.by_name.get(name, []):
            if self._ok(package.version, relation):
                return package
        for package, version in self.universe.providers.get(name, []):
            if self._ok(version if version is not None else package.version, relation):
                return package
        return None

    def _selected_match(self, relation: Relation) -> bool:
        """Whether a package already selected satisfies ``relation`` (by name or by what it provides)."""
        chosen = self.selected.get(relation[0])
        if chosen is not None and self._ok(chosen.version, relation):
            return True
        return any(
            self._ok(version if version is not None else package.version, relation)
            for package, version in self.selected_provides.get(relation[0], [])
        )

    def install(self, package: Package, problems: list[Problem]) -> bool:
        """Select ``package`` and its dependency closure; False (with a problem noted) if impossible."""
        if package.name in self.selected:
            return True
        self._select(package)
        ok = True
        for group in package.depends:
            # As opkg does: a group one of whose alternatives is already selected needs nothing more.
            if len(group) > 1 and any(self._selected_match(relation) for relation in group):
                continue
            for relation in group:
                dependency = self.candidate(relation)
                if dependency is not None:
                    ok = self.install(dependency, problems) and ok
                    break
            else:
                text = " | ".join(_relation_text(r, self.universe.apk) for r in group)
                problems.append(
                    Problem(
                        "unsatisfied", group[0][0], required_by=package.name, relation=text, subject=package
                    )
                )
                ok = False
        return ok

    def _select(self, package: Package) -> None:
        self.selected[package.name] = package
        for name, version in package.provided_names():
            self.selected_provides.setdefault(name, []).append((package, version))

    def conflicts(self) -> list[Problem]:
        problems = []
        for package in self.selected.values():
            clashing = []
            for name, op, version in package.conflicts:
                for other in self.selected.values():
                    if other is package:
                        continue
                    names = {other.name: other.version}
                    names.update({n: v or other.version for n, v in other.provided_names()})
                    if name in names and satisfies(names[name], op, version, self.universe.apk):
                        clashing.append(other)
            if clashing:
                problems.append(Problem("conflict", package.name, others=clashing, subject=package))
        return problems


def parse_request(token: str, apk: bool) -> Relation:
    """A PACKAGES token: a name, or with apk also ``name=version`` / ``name>=version`` …"""
    if apk:
        match = _APK_TOKEN.match(token)
        if match:
            return (match.group(1), match.group(2), match.group(3))
    return parse_relation(token) if apk else (token, None, None)


def resolve(requests: list[str], universe: Universe) -> Resolution:
    """Resolve ``requests`` (already filtered of ``-pkg`` removals) in order, collecting every problem."""
    resolver = Resolver(universe)
    problems: list[Problem] = []
    requested: list[str] = []
    asked: list[str] = []
    for token in requests:
        relation = parse_request(token, universe.apk)
        package = resolver.candidate(relation)
        if package is None:
            problems.append(Problem("unknown", relation[0], top=token))
            continue
        found: list[Problem] = []
        if resolver.install(package, found):
            requested.append(package.name)
            asked.append(relation[0])
        for problem in found:
            problem.top = token
        problems.extend(found)
    problems.extend(resolver.conflicts())
    return Resolution(list(resolver.selected.values()), requested, problems, asked)
