"""``index.json`` v1 and v2."""

from __future__ import annotations

import pytest

from asud.upstream.errors import UpstreamFormatError
from asud.upstream.index_json import parse_index_json


def test_versions() -> None:
    v1 = parse_index_json(b'{"architecture": "mips_24kc", "packages": {"libubox20240329": "2024.03.29-1"}}')
    assert (v1.version, v1.abi_stripped, v1.packages) == (1, False, {"libubox20240329": "2024.03.29-1"})
    v2 = parse_index_json('{"version": 2, "architecture": "x86_64", "packages": {"libubox": "2024.03.29"}}')
    assert (v2.version, v2.architecture, v2.abi_stripped) == (2, "x86_64", True)


def test_refuses_wrong_shapes() -> None:
    for data in (b'{"version": 2}', b'{"packages": {"a": 1}}', b'{"version": "2", "packages": {}}', b"[]"):
        with pytest.raises(UpstreamFormatError):
            parse_index_json(data)
