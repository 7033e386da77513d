"""opkg ``Packages`` and ``Packages.manifest``: RFC-822-like stanzas separated by blank lines.

``Packages.manifest`` has every control field; ``Packages`` drops a few (Maintainer, Source, …).
Older indexes write ``SHA256sum:<hex>`` without the space. A ``Description`` continues on lines that
start with a space. Parsing splits strings instead of running regexes: a catalog sync reads ~10,000
stanzas per architecture and feed set.
"""

from __future__ import annotations

from asud.upstream.errors import UpstreamFormatError
from asud.upstream.records import Dependency, PackageRecord

__all__ = ["parse_depends", "parse_names", "parse_packages"]

_OPERATORS = ("<<", "<=", ">=", ">>", "==", "<", ">", "=")
_OPERATOR_CHARS = frozenset("<>=")


def _dependency(text: str) -> Dependency:
    """``name``, ``name (>= 1.2)``, ``name (>=1.2)`` or the apk spelling ``name>=1.2``."""
    text = text.strip()
    if "(" not in text and "<" not in text and ">" not in text and "=" not in text:
        return Dependency(text)  # the common case, kept cheap
    paren = text.find("(")
    if paren >= 0:
        name = text[:paren].strip()
        inner = text[paren + 1 :].rstrip(")").strip()
    else:
        cut = next((i for i, char in enumerate(text) if char in _OPERATOR_CHARS), -1)
        if cut < 0:
            return Dependency(text)
        name, inner = text[:cut].strip(), text[cut:]
    for op in _OPERATORS:
        if inner.startswith(op):
            version = inner[len(op) :].strip()
            if not name or not version:
                break
            return Dependency(name, op, version)
    raise UpstreamFormatError(f"cannot parse dependency {text!r}")


def parse_depends(value: str) -> tuple[tuple[Dependency, ...], ...]:
    """A ``Depends`` value: comma-separated entries, each a ``|``-separated tuple of alternatives."""
    entries: list[tuple[Dependency, ...]] = []
    for entry in value.split(","):
        if not entry.strip():
            continue
        alternatives = entry.split("|")
        entries.append(tuple(_dependency(alternative) for alternative in alternatives if alternative.strip()))
    return tuple(entries)


def parse_names(value: str) -> tuple[str, ...]:
    """Names of a ``Provides``/``Conflicts`` value, version qualifiers dropped."""
    names = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        names.append(_dependency(item).name if ("(" in item or any(c in item for c in "<>=")) else item)
    return tuple(names)


def _int(value: str, field: str, package: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise UpstreamFormatError(f"Packages: {field} of {package!r} is not a number: {value!r}") from None


def _record(fields: dict[str, str]) -> PackageRecord:
    name = fields.get("Package")
    version = fields.get("Version")
    if not name or not version:
        raise UpstreamFormatError(f"Packages: stanza without Package/Version: {fields!r}"[:300])
    get = fields.get
    depends = get("Depends")
    provides = get("Provides")
    conflicts = get("Conflicts")
    return PackageRecord(
        name=name,
        version=version,
        depends=parse_depends(depends) if depends else (),
        provides=parse_names(provides) if provides else (),
        conflicts=parse_names(conflicts) if conflicts else (),
        abi_version=get("ABIVersion") or None,
        architecture=get("Architecture", ""),
        filename=get("Filename", ""),
        size=_int(get("Size") or "0", "Size", name),
        sha256=get("SHA256sum", ""),
        installed_size=_int(get("Installed-Size") or "0", "Installed-Size", name),
        section=get("Section", ""),
        description=get("Description", ""),
    )


def parse_packages(text: str) -> list[PackageRecord]:
    """Every stanza of a ``Packages``/``Packages.manifest`` text, in file order."""
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    records: list[PackageRecord] = []
    fields: dict[str, str] = {}
    last_key = ""
    for line in text.split("\n"):
        if not line:
            if fields:
                records.append(_record(fields))
                fields = {}
                last_key = ""
            continue
        if line[0] in " \t":
            if not last_key:
                raise UpstreamFormatError(f"Packages: continuation line without a field: {line!r}")
            continued = line[1:] if line[0] == " " else line.lstrip()
            fields[last_key] = f"{fields[last_key]}\n{continued}" if fields[last_key] else continued
            continue
        key, colon, value = line.partition(":")
        if not colon:
            raise UpstreamFormatError(f"Packages: line is not 'Field: value': {line!r}")
        fields[key] = value.strip()
        last_key = key
    if fields:
        records.append(_record(fields))
    return records
