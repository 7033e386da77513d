"""Stored upgrade-check answers: full hash, 12/15-character prefixes, replacement, pruning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from sysup.database import Base, create_engine_for, session_factory
from sysup.upgrades.check import UpgradeCheck
from sysup.upgrades.models import UpgradeCheckRecord
from sysup.upgrades.request import UpgradeCheckRequest
from sysup.upgrades.store import load_check, prune_checks, save_check

CHECK = UpgradeCheck(
    version="24.10.5", version_code="r29087-d9c5716d1d", upgrades={"curl": ("2", "1")}, packages=["curl"]
)


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'sysup.db'}")
    Base.metadata.create_all(engine, tables=[UpgradeCheckRecord.__table__])  # type: ignore[list-item]
    return session_factory(engine)


def request(version: str = "24.10.4") -> UpgradeCheckRequest:
    return UpgradeCheckRequest(distro="openwrt", version=version, target="x86/64", packages={"curl": "1"})


def test_full_hash_and_prefixes(sessions: sessionmaker[Session]) -> None:
    asked = request()
    save_check(sessions, asked, CHECK)
    full = asked.request_hash
    for key in (full, full[:12], full[:15], full.upper()):
        stored = load_check(sessions, key)
        assert stored is not None, key
        assert stored.request_hash == asked.request_hash
        assert stored.check == CHECK
    assert load_check(sessions, asked.request_hash[:11]) is None  # too short to be one of ours
    assert load_check(sessions, "0" * 64) is None
    assert load_check(sessions, "not-a-hash-at-all") is None


def test_up_to_date_is_stored_too(sessions: sessionmaker[Session]) -> None:
    asked = request("25.12.1")
    save_check(sessions, asked, None)
    stored = load_check(sessions, asked.request_hash)
    assert stored is not None and stored.check is None


def test_a_new_answer_replaces_the_old(sessions: sessionmaker[Session]) -> None:
    asked = request()
    save_check(sessions, asked, None)
    save_check(sessions, asked, CHECK)
    stored = load_check(sessions, asked.request_hash)
    assert stored is not None and stored.check == CHECK


def test_ambiguous_prefix_is_not_found(sessions: sessionmaker[Session]) -> None:
    # Two real requests sharing 12 hex characters are astronomically unlikely: write the rows directly.
    with sessions() as session:
        for suffix in ("a" * 52, "b" * 52):
            session.add(
                UpgradeCheckRecord(
                    request_hash="0123456789ab" + suffix,
                    distro="openwrt",
                    version="1",
                    target="x/y",
                    answer=None,
                    checked_at=datetime(2026, 1, 1, tzinfo=UTC),
                )
            )
        session.commit()
    assert load_check(sessions, "0123456789ab") is None
    assert load_check(sessions, "0123456789aba") is not None


def test_prune(sessions: sessionmaker[Session]) -> None:
    save_check(sessions, request(), CHECK)
    assert prune_checks(sessions, timedelta(days=1)) == 0
    assert prune_checks(sessions, timedelta(seconds=-1)) == 1
    assert load_check(sessions, request().request_hash) is None
