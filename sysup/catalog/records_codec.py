"""Compact storage of a feed's package records: zstd-compressed JSON arrays, one per record.

A record is stored positionally (``[name, version, depends, provides, conflicts, abi_version, …]``)
because field names would dominate the size of 10,000 small records; trailing empty fields are
dropped. ``decode_records(encode_records(r)) == r`` for every ``PackageRecord``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
import zstandard

from asud.upstream.records import Dependency, PackageRecord

#: zstd level: 3 compresses a 10,000-package feed in milliseconds at ~8 times smaller than the JSON.
COMPRESSION_LEVEL = 3

_EMPTY: tuple[Any, ...] = ((), (), (), None, "", "", 0, "", 0, "", "")


def _dependency(dep: Dependency) -> list[str] | str:
    if dep.op is None and dep.version is None:
        return dep.name
    return [dep.name, dep.op or "", dep.version or ""]


def _record_row(record: PackageRecord) -> list[Any]:
    row: list[Any] = [
        record.name,
        record.version,
        [[_dependency(alt) for alt in group] for group in record.depends],
        list(record.provides),
        list(record.conflicts),
        record.abi_version,
        record.architecture,
        record.filename,
        record.size,
        record.sha256,
        record.installed_size,
        record.section,
        record.description,
    ]
    while len(row) > 2 and _is_empty(row[-1]):
        row.pop()
    return row


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value == 0 or value == []


def encode_records(records: Iterable[PackageRecord]) -> bytes:
    """The stored form of ``records`` (order kept: resolution prefers providers in index order)."""
    payload = orjson.dumps([_record_row(record) for record in records])
    return zstandard.ZstdCompressor(level=COMPRESSION_LEVEL).compress(payload)


def _parse_dependency(item: list[str] | str) -> Dependency:
    if isinstance(item, str):
        return Dependency(item)
    name, op, version = item
    return Dependency(name, op or None, version or None)


def decode_records(blob: bytes) -> list[PackageRecord]:
    """The records ``encode_records`` stored."""
    rows = orjson.loads(zstandard.ZstdDecompressor().decompress(blob))
    records = []
    for row in rows:
        fields = list(row) + list(_EMPTY[len(row) - 2 :])
        records.append(
            PackageRecord(
                name=fields[0],
                version=fields[1],
                depends=tuple(tuple(_parse_dependency(alt) for alt in group) for group in fields[2]),
                provides=tuple(fields[3]),
                conflicts=tuple(fields[4]),
                abi_version=fields[5],
                architecture=fields[6],
                filename=fields[7],
                size=fields[8],
                sha256=fields[9],
                installed_size=fields[10],
                section=fields[11],
                description=fields[12],
            )
        )
    return records
