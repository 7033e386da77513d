"""``.targets.json`` and ``.overview.json``."""

from __future__ import annotations

import pytest

from asud.upstream.errors import UpstreamFormatError
from asud.upstream.targets_json import parse_overview_json, parse_targets_json


def test_targets_are_sorted_and_checked() -> None:
    assert list(parse_targets_json(b'{"x86/64": "x86_64", "ath79/generic": "mips_24kc"}')) == [
        "ath79/generic", "x86/64"]
    with pytest.raises(UpstreamFormatError):
        parse_targets_json(b'{"x86": "x86_64"}')
    with pytest.raises(UpstreamFormatError):
        parse_targets_json(b'{"x86/64": 1}')


def test_overview() -> None:
    data = (b'{"release": "23.05.4", "profiles": [{"id": "huawei_hg253s-v2", "target": "bmips/bcm6362",'
            b' "titles": [{"model": "HG253s", "variant": "v2", "vendor": "Huawei"}]}]}')
    overview = parse_overview_json(data)
    assert overview["release"] == "23.05.4" and overview["profiles"][0]["target"] == "bmips/bcm6362"
    with pytest.raises(UpstreamFormatError):
        parse_overview_json(b'{"profiles": [{"id": "x"}]}')
