"""The concrete packages of one release and target: ABI names, era version strings, rendered relations.

``catalog_data`` says what exists in neutral form; this module decides, for one release and target, the
exact name, version and relations each package file and index entry carries.
"""

from __future__ import annotations

from dataclasses import dataclass

from asud.demo.catalog_data import KMODS, PACKAGES, PackageDef, lookup
from asud.demo.devices import TargetDef
from asud.demo.releases import Release
from asud.upstream.records import Dependency

__all__ = ["FEEDS", "PackageSpec", "release_packages"]

#: The ``packages/<arch>/<feed>`` feeds, in repositories-file order.
FEEDS = ("base", "luci", "packages")
_OPS = ("<=", ">=", "<", ">", "=")


@dataclass(frozen=True, slots=True)
class PackageSpec:
    """Everything one package file and its index entries carry."""

    name: str
    base_name: str
    version: str
    abi_version: str | None
    #: ``core`` (target ``packages/``), ``kmods``, ``imagebuilder`` (IB-local), or an arch feed.
    feed: str
    architecture: str
    depends: tuple[tuple[Dependency, ...], ...]
    provides: tuple[str, ...]
    conflicts: tuple[str, ...]
    section: str
    description: str
    payload: int
    package_manager: str
    source_date_epoch: int

    @property
    def file_name(self) -> str:
        """``<name>_<version>_<arch>.ipk`` (opkg) or ``<name>-<version>.apk`` (apk)."""
        if self.package_manager == "opkg":
            return f"{self.name}_{self.version}_{self.architecture}.ipk"
        return f"{self.name}-{self.version}.apk"

    def opkg_depends(self) -> str:
        """``Depends:`` value: ``libc, ucode (>= 2024.07.11), a | b``."""
        return ", ".join(" | ".join(_opkg_relation(dep) for dep in group) for group in self.depends)

    def apk_depends(self) -> list[str]:
        """apk ``depend`` entries (``ucode>=2024.07.11``); apk has no alternatives, the first one is kept."""
        return [f"{group[0].name}{group[0].op or ''}{group[0].version or ''}" for group in self.depends]


def _opkg_relation(dep: Dependency) -> str:
    if dep.op is None:
        return dep.name
    op = {"<": "<=", ">": ">="}.get(dep.op, dep.op)
    return f"{dep.name} ({op} {dep.version})"


def _parse_relation(text: str) -> tuple[str, str | None, str | None]:
    for op in _OPS:
        if op in text:
            name, _, version = text.partition(op)
            return name, op, version
    return text, None, None


def release_packages(release: Release, target: TargetDef) -> list[PackageSpec]:
    """Every package of ``release`` for ``target``: core, kmods, the arch feeds and the IB-local ones."""
    branch = release.branch
    arch = target.arch_packages
    defs: list[PackageDef] = [
        d
        for d in PACKAGES
        if (not d.branches or branch in d.branches) and (not d.targets or target.target in d.targets)
    ]
    kernel_version = release.kernel_package_version(target.target)
    kmod_feed = "kmods" if release.kmods_split else "core"

    names: dict[str, str] = {}  # base name → name with ABI suffix
    versions: dict[str, str] = {}  # base name → version string
    abis: dict[str, str | None] = {}
    for d in defs:
        upstream, rel = lookup(d.versions, release.version, branch) or ("0", 1)
        abi = lookup(d.abi, release.version, branch) if d.abi else None
        names[d.name] = d.name + (abi or "")
        versions[d.name] = release.package_version(upstream, rel)
        abis[d.name] = abi
    for kmod in KMODS:
        names[kmod], versions[kmod], abis[kmod] = kmod, release.kmod_version, None
    names["kernel"], versions["kernel"] = "kernel", kernel_version
    names["libc"], versions["libc"] = "libc", release.package_version(*_LIBC_VERSION[branch])

    def render(depends: list[str]) -> tuple[tuple[Dependency, ...], ...]:
        groups = []
        for token in depends:
            group = []
            for alternative in token.split("|"):
                base, op, version = _parse_relation(alternative)
                if version == "@":
                    version = versions[base]
                group.append(Dependency(names.get(base, base), op, version))
            groups.append(tuple(group))
        return tuple(groups)

    def spec(
        name: str,
        feed: str,
        depends: list[str],
        provides: tuple[str, ...] = (),
        conflicts: tuple[str, ...] = (),
        section: str = "base",
        description: str = "",
        payload: int = 0,
        arch_all: bool = False,
    ) -> PackageSpec:
        abi = abis.get(name)
        return PackageSpec(
            name=names[name],
            base_name=name,
            version=versions[name],
            abi_version=abi,
            feed=feed,
            architecture="all" if arch_all else arch,
            depends=render(depends),
            provides=((name,) if abi else ()) + provides,
            conflicts=conflicts,
            section=section,
            description=description or name,
            payload=payload,
            package_manager=release.package_manager,
            source_date_epoch=release.source_date_epoch,
        )

    specs = [
        spec(
            d.name,
            d.feed,
            list(d.depends),
            d.provides,
            d.conflicts,
            d.section,
            d.description,
            d.payload,
            d.arch_all,
        )
        for d in defs
    ]
    for kmod, deps in KMODS.items():
        title = kmod.removeprefix("kmod-").replace("-", " ")
        specs.append(
            spec(
                kmod,
                kmod_feed,
                ["kernel=@", *deps.split()],
                section="kernel",
                description=f"Kernel support for {title}",
            )
        )
    specs.append(spec("kernel", "imagebuilder", [], section="kernel", description="Linux kernel"))
    specs.append(spec("libc", "imagebuilder", [], section="libs", description="C library (musl)"))
    return specs


_LIBC_VERSION: dict[str, tuple[str, int]] = {
    "23.05": ("1.2.4", 101),
    "24.10": ("1.2.5", 4),
    "25.12": ("1.2.5", 6),
    "SNAPSHOT": ("1.2.5", 7),
}
