"""An ImageBuilder's repository list (opkg ``repositories.conf``, apk ``repositories``), read and written.

The builder points these files at its own verified copies of the feeds, so parsing keeps every line
(comments, options, feeds commented out) and writing gives the same text back, changed only where an
entry was replaced.

opkg (``repositories.conf``)::

    ## Remote package repositories
    src/gz openwrt_core https://downloads.openwrt.org/releases/24.10.2/targets/x86/64/packages
    # src/gz openwrt_telephony https://…/telephony          (feed built as module: commented out)
    src imagebuilder file:packages
    option check_signature

apk (``repositories``)::

    # comment
    set -default arch=x86_64
    https://downloads.openwrt.org/releases/25.12.1/targets/x86/64/packages/packages.adb
    [ndx|v2|v3] [@tag] <url> [component …]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from asud.upstream.records import PackageManager

__all__ = [
    "RepositoryEntry",
    "format_apk_repositories",
    "format_repositories",
    "format_repositories_conf",
    "parse_apk_repositories",
    "parse_repositories",
    "parse_repositories_conf",
    "rewrite_urls",
]

EntryKind = Literal["repository", "option", "set", "comment", "blank", "other"]

_OPKG_FEED_TYPES = ("src/gz", "src")
_APK_INDEX_TYPES = ("ndx", "v2", "v3")
_URL_STARTS = ("http://", "https://", "ftp://", "file:", "/", "./")


@dataclass(frozen=True, slots=True)
class RepositoryEntry:
    """One line. ``repository`` lines carry ``url`` (and for opkg ``type`` + ``name``); ``enabled`` is
    ``False`` for a feed that is commented out. Other kinds are written back as their ``text``."""

    kind: EntryKind
    url: str = ""
    name: str = ""
    #: opkg ``src/gz`` or ``src``; apk ``""`` or ``ndx``/``v2``/``v3``.
    type: str = ""
    enabled: bool = True
    #: apk ``@tag`` (without ``@``) and components after the URL.
    tag: str = ""
    components: tuple[str, ...] = ()
    #: The line as read; used to write back everything that is not a repository.
    text: str = ""

    @property
    def is_local(self) -> bool:
        """The IB's own ``file:packages`` (or a plain path), which needs no rewriting or signature."""
        return not self.url.startswith(("http://", "https://", "ftp://"))


# -- opkg ---------------------------------------------------------------------------------------------


def _opkg_feed(tokens: list[str]) -> tuple[str, str, str] | None:
    if len(tokens) == 3 and tokens[0] in _OPKG_FEED_TYPES:
        return tokens[0], tokens[1], tokens[2]
    return None


def parse_repositories_conf(text: str) -> list[RepositoryEntry]:
    entries: list[RepositoryEntry] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            entries.append(RepositoryEntry("blank", text=line))
            continue
        if stripped.startswith("#"):
            feed = _opkg_feed(stripped.lstrip("#").split())
            if feed:
                entries.append(RepositoryEntry("repository", type=feed[0], name=feed[1], url=feed[2],
                                               enabled=False, text=line))
            else:
                entries.append(RepositoryEntry("comment", text=line))
            continue
        tokens = stripped.split()
        feed = _opkg_feed(tokens)
        if feed:
            entries.append(RepositoryEntry("repository", type=feed[0], name=feed[1], url=feed[2], text=line))
        elif tokens[0] == "option":
            entries.append(RepositoryEntry("option", name=tokens[1] if len(tokens) > 1 else "", text=line))
        else:
            entries.append(RepositoryEntry("other", text=line))
    return entries


def _unchanged(entry: RepositoryEntry, parse: Callable[[str], list[RepositoryEntry]]) -> bool:
    """Whether ``entry`` still says what its ``text`` says, so the line can be kept byte for byte."""
    return bool(entry.text) and parse(entry.text) == [entry]


def format_repositories_conf(entries: Iterable[RepositoryEntry]) -> str:
    lines = []
    for entry in entries:
        if entry.kind == "repository" and not _unchanged(entry, parse_repositories_conf):
            line = f"{entry.type or 'src/gz'} {entry.name} {entry.url}"
            lines.append(line if entry.enabled else f"# {line}")
        else:
            lines.append(entry.text)
    return "".join(f"{line}\n" for line in lines)


# -- apk ----------------------------------------------------------------------------------------------


def _apk_repository(tokens: list[str], enabled: bool, line: str) -> RepositoryEntry | None:
    index_type = tag = ""
    if tokens and tokens[0] in _APK_INDEX_TYPES:
        index_type, tokens = tokens[0], tokens[1:]
    if tokens and tokens[0].startswith("@"):
        tag, tokens = tokens[0][1:], tokens[1:]
    if not tokens or (not tokens[0].startswith(_URL_STARTS) and not (index_type or tag)):
        return None
    return RepositoryEntry("repository", url=tokens[0], type=index_type, tag=tag,
                           components=tuple(tokens[1:]), enabled=enabled, text=line)


def parse_apk_repositories(text: str) -> list[RepositoryEntry]:
    entries: list[RepositoryEntry] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            entries.append(RepositoryEntry("blank", text=line))
        elif stripped.startswith("#"):
            entry = _apk_repository(stripped.lstrip("#").split(), False, line)
            entries.append(entry or RepositoryEntry("comment", text=line))
        elif stripped.split()[0] == "set":
            entries.append(RepositoryEntry("set", text=line))
        else:
            # apk treats any other line as a repository, whatever its URL looks like.
            tokens = stripped.split()
            entry = _apk_repository(tokens, True, line)
            entries.append(entry or RepositoryEntry("repository", url=tokens[0], components=tuple(tokens[1:]),
                                                    text=line))
    return entries


def format_apk_repositories(entries: Iterable[RepositoryEntry]) -> str:
    lines = []
    for entry in entries:
        if entry.kind == "repository" and not _unchanged(entry, parse_apk_repositories):
            tokens = [entry.type] if entry.type else []
            if entry.tag:
                tokens.append(f"@{entry.tag}")
            tokens += [entry.url, *entry.components]
            line = " ".join(tokens)
            lines.append(line if entry.enabled else f"# {line}")
        else:
            lines.append(entry.text)
    return "".join(f"{line}\n" for line in lines)


# -- either -------------------------------------------------------------------------------------------


def parse_repositories(text: str, manager: PackageManager) -> list[RepositoryEntry]:
    """``repositories.conf`` for opkg IBs, ``repositories`` for apk IBs."""
    return parse_apk_repositories(text) if manager == "apk" else parse_repositories_conf(text)


def format_repositories(entries: Iterable[RepositoryEntry], manager: PackageManager) -> str:
    return format_apk_repositories(entries) if manager == "apk" else format_repositories_conf(entries)


def rewrite_urls(entries: Iterable[RepositoryEntry], rewrite: Callable[[str], str]) -> list[RepositoryEntry]:
    """Entries with every repository URL (enabled or not) replaced by ``rewrite(url)``."""
    return [
        dataclasses.replace(entry, url=rewrite(entry.url)) if entry.kind == "repository" else entry
        for entry in entries
    ]
