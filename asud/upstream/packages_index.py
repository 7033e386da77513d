"""opkg ``Packages`` and ``Packages.manifest``: RFC-822-like stanzas separated by blank lines.

``Packages.manifest`` has every control field; ``Packages`` drops a few (Maintainer, Source, …).
Older indexes write ``SHA256sum:<hex>`` without the space. A ``Description`` continues on lines that
start with a space. Parsing splits strings instead of running regexes: a catalog sync reads ~10,000
stanzas per architecture and feed set.
"""

from __future__ import annotations

import re

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


def _depends(value: str, seen: dict[str, tuple[tuple[Dependency, ...], ...]] | None) -> tuple[
        tuple[Dependency, ...], ...]:
    if seen is None:
        return parse_depends(value)
    parsed = seen.get(value)
    if parsed is None:
        parsed = seen[value] = parse_depends(value)
    return parsed


def _int(value: str, field: str, package: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise UpstreamFormatError(f"Packages: {field} of {package!r} is not a number: {value!r}") from None


def _record(
    fields: dict[str, str], depends_seen: dict[str, tuple[tuple[Dependency, ...], ...]] | None = None
) -> PackageRecord:
    """The record of one stanza's fields; ``depends_seen`` memoises ``Depends`` values within one index
    (most packages share a few, ``libc`` first of all), so equal values share one parsed tuple."""
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
        depends=_depends(depends, depends_seen) if depends else (),
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


#: One field of a stanza: ``Key: value`` and the continuation lines (starting with a space or tab) after it.
_FIELD = re.compile(r"^([^ \t\n][^:\n]*):[ \t]*([^\n]*(?:\n[ \t][^\n]*)*)", re.M)


def _continued(value: str) -> str:
    """A value with continuation lines, joined as :func:`parse_packages` always has: the first line
    stripped, each continuation without its one leading space (or all leading blanks after a tab); an empty
    first line is dropped."""
    lines = value.split("\n")
    joined = lines[0].strip()
    for line in lines[1:]:
        continued = line[1:] if line[0] == " " else line.lstrip()
        joined = f"{joined}\n{continued}" if joined else continued
    return joined


def _stanza_fields(stanza: str) -> dict[str, str]:
    """The fields of one stanza (no blank line inside); a line that is neither a field nor a continuation is
    an error, as is a continuation before the first field."""
    if stanza[0] in " \t":
        first = stanza.split("\n", 1)[0]
        raise UpstreamFormatError(f"Packages: continuation line without a field: {first!r}")
    found = _FIELD.findall(stanza)
    # Every line is a field or a continuation: count them without a Python loop over the lines.
    lines = stanza.count("\n") + 1
    continuations = stanza.count("\n ") + stanza.count("\n\t")
    if len(found) != lines - continuations:
        for line in stanza.split("\n"):
            if line[0] not in " \t" and ":" not in line:
                raise UpstreamFormatError(f"Packages: line is not 'Field: value': {line!r}")
        raise UpstreamFormatError(f"Packages: stanza not understood: {stanza[:200]!r}")
    if not continuations and " \n" not in stanza and "\t\n" not in stanza and stanza[-1] not in " \t":
        return dict(found)  # no value to join or strip (nearly every stanza): the regex's answer as it is
    return {key: _continued(value) if "\n" in value else value.strip() for key, value in found}


def parse_packages(text: str) -> list[PackageRecord]:
    """Every stanza of a ``Packages``/``Packages.manifest`` text, in file order.

    Stanzas are split at blank lines and their fields found by one regular expression each, so the
    ~10,000 stanzas of a feed set are read without a Python loop over their ~150,000 lines (the first
    validation on a cold feed waits for this)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    records: list[PackageRecord] = []
    depends_seen: dict[str, tuple[tuple[Dependency, ...], ...]] = {}
    for stanza in text.split("\n\n"):  # only an empty line ends a stanza (a blank one continues a field)
        stanza = stanza.strip("\n")
        if stanza:
            records.append(_record(_stanza_fields(stanza), depends_seen))
    return records
