"""Version rules: every apk-tools vector, the opkg examples, and OpenWrt release ordering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asud.upstream.version_order import (
    apk_compare,
    apk_satisfies,
    apk_version_valid,
    branch_of,
    compare_packages,
    opkg_compare,
    opkg_satisfies,
    release_key,
    revision_number,
)

_EXPECTED = {"<": -1, "=": 0, ">": 1}


def _apk_vectors(samples_dir: Path) -> tuple[list[tuple[str, str, str]], list[str]]:
    """``apk-version.data``: ``a op b`` lines (op: < = > ~ <~ >~ !~), and bare versions
    (``!`` prefix = invalid) for the validity check; ``#`` starts a comment."""
    relations, validity = [], []
    for line in (samples_dir / "apk-version.data").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) == 3:
            relations.append((parts[0], parts[1], parts[2]))
        else:
            assert len(parts) == 1, line
            validity.append(parts[0])
    return relations, validity


def test_all_apk_tools_comparison_vectors(samples_dir: Path) -> None:
    relations, _ = _apk_vectors(samples_dir)
    ordered = [r for r in relations if r[1] in _EXPECTED]
    assert len(ordered) == 738
    failures = [
        (a, op, b) for a, op, b in ordered
        if apk_compare(a, b) != _EXPECTED[op] or apk_compare(b, a) != -_EXPECTED[op]
    ]
    assert failures == []


def test_apk_fuzzy_relations_and_validity(samples_dir: Path) -> None:
    relations, validity = _apk_vectors(samples_dir)
    fuzzy = [r for r in relations if r[1] not in _EXPECTED]
    assert len(fuzzy) == 16
    assert [r for r in fuzzy if not apk_satisfies(*r)] == []
    assert len(validity) == 31
    assert [v for v in validity if apk_version_valid(v.removeprefix("!")) == v.startswith("!")] == []


def test_apk_satisfies_plain_relations() -> None:
    assert apk_satisfies("1.36.1-r2", ">=", "1.36.1")
    assert apk_satisfies("1.36.1-r2", ">", "1.36.1-r1")
    assert not apk_satisfies("1.36.1-r2", "<", "1.36.1-r2")
    assert apk_satisfies("1.36.1-r2", "<=", "1.36.1-r2")
    assert apk_satisfies("1.0", "!=", "1.0-r1")
    assert apk_satisfies("1.01", "<", "1.1")  # leading zero: string order, unlike opkg
    with pytest.raises(ValueError):
        apk_satisfies("1", "=>x", "1")


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("1.0-1", "1.0-2", -1),
        ("1.0~rc1-1", "1.0-1", -1),
        ("1:0.9-1", "2.0-1", 1),
        ("1.10", "1.9", 1),
        ("1.0", "1.0a", -1),
        ("1.01", "1.1", 0),
        ("2020-01-21-deb745f8-1", "2021-01-04-c53b1882-1", -1),
        ("2024.03.29~eb9bcb64-r1", "2024.03.29-r1", -1),
        ("git-20.047.38617-2fa9885-1", "git-20.047.38617-2fa9885-1", 0),
        ("1.0+x", "1.0a", 1),  # symbols sort after letters
        ("1.36.1-r2", "1.36.1-r10", -1),
    ],
)
def test_opkg_examples(a: str, b: str, expected: int) -> None:
    assert opkg_compare(a, b) == expected
    assert opkg_compare(b, a) == -expected


def test_opkg_relations_use_dpkg_meanings() -> None:
    assert opkg_satisfies("1.0-1", "<<", "1.0-2")
    assert not opkg_satisfies("1.0-2", "<<", "1.0-2")
    assert opkg_satisfies("1.0-2", "<", "1.0-2")  # legacy: < means <=
    assert opkg_satisfies("1.0-2", ">", "1.0-2")  # legacy: > means >=
    assert opkg_satisfies("1.0-2", "<=", "1.0-2") and opkg_satisfies("1.0-2", ">=", "1.0-2")
    assert opkg_satisfies("1.01", "=", "1.1")
    assert opkg_satisfies("1.0-3", ">>", "1.0-2") and not opkg_satisfies("1.0-2", ">>", "1.0-2")
    with pytest.raises(ValueError):
        opkg_satisfies("1", "~", "1")


def test_managers_disagree_where_the_spec_says() -> None:
    assert compare_packages("1.01", "1.1", "opkg") == 0
    assert compare_packages("1.01", "1.1", "apk") == -1
    assert compare_packages("2024.03.29~eb9bcb64-r1", "2024.03.29-r1", "opkg") == -1
    assert compare_packages("2024.03.29~eb9bcb64-r1", "2024.03.29-r1", "apk") == 1


def test_release_order_sorts_real_versions_list(samples_dir: Path) -> None:
    versions = json.loads((samples_dir / "versions.json").read_text())["versions_list"]
    ordered = sorted(versions, key=release_key)
    assert ordered[0] == "17.01.1" and ordered[-1] == "25.12.5"
    assert ordered.index("19.07.9") < ordered.index("19.07.10")
    rc = [v for v in ordered if v.startswith("24.10.0")]
    assert rc == [f"24.10.0-rc{i}" for i in range(1, 8)] + ["24.10.0"]
    assert ordered.index("24.10.0") < ordered.index("24.10.1") < ordered.index("24.10.8")
    assert ordered.index("22.03.0-rc6") < ordered.index("22.03.0") < ordered.index("22.03.1")
    assert len(set(map(release_key, versions))) == len(versions)  # a total order: no two keys tie


def test_snapshots_sort_after_their_releases() -> None:
    versions = ["SNAPSHOT", "24.10-SNAPSHOT", "25.12.0-rc1", "24.10.8", "24.10.0", "23.05-SNAPSHOT",
                "25.12.1"]
    assert sorted(versions, key=release_key) == [
        "23.05-SNAPSHOT", "24.10.0", "24.10.8", "24.10-SNAPSHOT", "25.12.0-rc1", "25.12.1", "SNAPSHOT",
    ]


def test_branch_and_revision() -> None:
    assert branch_of("24.10.3") == "24.10"
    assert branch_of("24.10.0-rc1") == "24.10"
    assert branch_of("24.10-SNAPSHOT") == "24.10"
    assert branch_of("SNAPSHOT") == "SNAPSHOT"
    assert revision_number("r28427-6df0e3d02a") == 28427
    assert revision_number("r1+2-abc") == 1
    assert revision_number("unknown") is None
    assert revision_number("r-abc") is None
