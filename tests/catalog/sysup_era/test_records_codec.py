"""Stored feeds decode to exactly the records that were encoded, at a fraction of the JSON size."""

from __future__ import annotations

import orjson

from asud.upstream.records import Dependency, PackageRecord
from sysup.catalog.records_codec import decode_records, encode_records


def test_round_trip_keeps_every_field_and_the_order() -> None:
    records = [
        PackageRecord("luci", "25.1-r1"),
        PackageRecord(
            "libubox20240329",
            "2024.03.29~eb9bcb64-r1",
            depends=((Dependency("libc"),), (Dependency("a", ">=", "2"), Dependency("b"))),
            provides=("libubox",),
            conflicts=("libubox-old",),
            abi_version="20240329",
            architecture="mips_24kc",
            filename="libubox20240329_2024.03.29~eb9bcb64-r1_mips_24kc.ipk",
            size=12345,
            sha256="ab" * 32,
            installed_size=40000,
            section="libs",
            description="Basic utility library",
        ),
        PackageRecord("zlib", "1.3.1-r1", description="compression"),
    ]
    assert decode_records(encode_records(records)) == records


def test_encoding_is_compact() -> None:
    records = [
        PackageRecord(f"package-{i}", f"1.{i}-r1", depends=((Dependency("libc"),),), section="utils")
        for i in range(2000)
    ]
    blob = encode_records(records)
    plain = orjson.dumps([{"name": r.name, "version": r.version, "depends": ["libc"]} for r in records])
    assert len(blob) * 4 < len(plain)
    assert decode_records(blob) == records
