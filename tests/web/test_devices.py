"""Device search: every way people name a device finds it, typos included, and nothing else creeps in."""

from __future__ import annotations

import pytest

from asud.http.web_devices import Device, DeviceIndex, edit_distance, title_text, word_score, words_of

DEVICES = [
    Device("ath79/generic", "tplink_archer-c7-v2", ("TP-Link Archer C7 v2",), ("tplink,archer-c7-v2",)),
    Device(
        "ath79/generic",
        "tplink_archer-c7-v5",
        ("TP-Link Archer C7 v5", "TP-Link Archer A7 v5"),
        ("tplink,archer-c7-v5", "tplink,archer-a7-v5"),
    ),
    Device("ath79/generic", "tplink_tl-wr842n-v3", ("TP-Link TL-WR842N v3",), ("tplink,tl-wr842n-v3",)),
    Device("ath79/generic", "glinet_gl-ar150", ("GL.iNet GL-AR150",), ("glinet,gl-ar150", "gl-ar150")),
    Device("mediatek/filogic", "glinet_gl-mt6000", ("GL.iNet GL-MT6000",), ("glinet,gl-mt6000",)),
    Device("mediatek/filogic", "xiaomi_mi-router-ax3000t", ("Xiaomi Mi Router AX3000T",), ()),
    Device("x86/64", "generic", ("Generic x86/64",), ()),
]


@pytest.fixture(scope="module")
def index() -> DeviceIndex:
    return DeviceIndex(DEVICES)


def ids(devices: list[Device]) -> list[str]:
    return [device.id for device in devices]


def test_words_and_titles() -> None:
    assert words_of("TP-Link Archer C7") == ["tp", "link", "archer", "c7"]
    assert title_text({"vendor": "TP-Link", "model": "Archer C7", "variant": "v5"}) == "TP-Link Archer C7 v5"
    assert title_text({"title": "Generic x86/64"}) == "Generic x86/64"


def test_edit_distance_counts_a_swap_as_one_edit() -> None:
    assert edit_distance("archer", "archer", 2) == 0
    assert edit_distance("arhcer", "archer", 2) == 1
    assert edit_distance("archr", "archer", 2) == 1
    assert edit_distance("xiaomi", "archer", 2) == 3  # capped at limit + 1


def test_word_score_prefers_exact_then_prefix_then_inside_then_typos() -> None:
    scores = [word_score("archer", "archer"), word_score("arch", "archer"), word_score("rche", "archer"),
              word_score("archr", "archer")]
    assert scores == sorted(scores, reverse=True) and scores[-1] > 0
    assert word_score("c8", "c7") == 0  # short words get no typo tolerance


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("archer c7 v5", "tplink_archer-c7-v5"),
        ("Archer A7", "tplink_archer-c7-v5"),  # the second title
        ("tplink,archer-c7-v5", "tplink_archer-c7-v5"),  # the board name LuCI shows
        ("tplink_tl-wr842n-v3", "tplink_tl-wr842n-v3"),  # the profile id
        ("wr842", "tplink_tl-wr842n-v3"),
        ("archr c7 v2", "tplink_archer-c7-v2"),  # typo
        ("arhcer c7 v5", "tplink_archer-c7-v5"),  # swapped letters
        ("gl-mt6000", "glinet_gl-mt6000"),
        ("ax3000", "xiaomi_mi-router-ax3000t"),
        ("x86", "generic"),
    ],
)
def test_search_finds_the_device(index: DeviceIndex, query: str, first: str) -> None:
    assert ids(index.search(query))[0] == first


def test_search_needs_every_word(index: DeviceIndex) -> None:
    assert set(ids(index.search("archer"))) == {"tplink_archer-c7-v2", "tplink_archer-c7-v5"}
    assert ids(index.search("archer mt6000")) == []
    assert ids(index.search("")) == []
    assert ids(index.search("zyxel")) == []


def test_search_is_limited_and_lookup_by_key(index: DeviceIndex) -> None:
    assert len(index.search("tp", limit=2)) == 2
    assert index.get("ath79/generic", "glinet_gl-ar150") is DEVICES[3]
    assert index.get("ath79/generic", "nope") is None
    assert len(index) == len(DEVICES)
