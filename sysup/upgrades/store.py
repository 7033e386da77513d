"""Save and find answered upgrade checks (full hash, or the 12/15-character prefixes old clients kept).

``save_check(sessions, request, check)`` stores an answer (``check`` ``None``: up to date);
``load_check(sessions, "0123456789ab")`` finds it again as a :class:`StoredCheck`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from sysup.upgrades.check import UpgradeCheck
from sysup.upgrades.models import UpgradeCheckRecord
from sysup.upgrades.request import UpgradeCheckRequest

__all__ = ["MIN_PREFIX", "StoredCheck", "load_check", "prune_checks", "save_check"]

#: Shortest hash prefix looked up (the 2017 server issued 12 and 15 characters).
MIN_PREFIX = 12
_HEX = re.compile(rf"[0-9a-f]{{{MIN_PREFIX},64}}")


@dataclass(frozen=True)
class StoredCheck:
    request_hash: str
    #: ``None``: the device was up to date.
    check: UpgradeCheck | None
    checked_at: datetime


def save_check(
    sessions: sessionmaker[Session], request: UpgradeCheckRequest, check: UpgradeCheck | None
) -> None:
    """Store (or replace) the answer to ``request``; safe against a concurrent save of the same hash."""
    values = {
        "distro": request.distro,
        "version": request.version,
        "target": request.target,
        "answer": check.to_json() if check is not None else None,
        "checked_at": datetime.now(UTC),
    }
    for _attempt in range(2):
        with sessions() as session:
            row = session.get(UpgradeCheckRecord, request.request_hash)
            if row is None:
                session.add(UpgradeCheckRecord(request_hash=request.request_hash, **values))
            else:
                for name, value in values.items():
                    setattr(row, name, value)
            try:
                session.commit()
                return
            except IntegrityError:
                session.rollback()  # another process inserted it first: update that row instead
    raise RuntimeError(f"could not store upgrade check {request.request_hash}")


def load_check(sessions: sessionmaker[Session], request_hash: str) -> StoredCheck | None:
    """The stored answer for a full hash or an unambiguous prefix of at least ``MIN_PREFIX`` hex
    characters; ``None`` when unknown, ambiguous or not a hash."""
    wanted = request_hash.strip().lower()
    if not _HEX.fullmatch(wanted):
        return None
    with sessions() as session:
        if len(wanted) == 64:
            row = session.get(UpgradeCheckRecord, wanted)
            rows = [row] if row is not None else []
        else:
            rows = list(
                session.scalars(
                    select(UpgradeCheckRecord)
                    .where(UpgradeCheckRecord.request_hash.startswith(wanted, autoescape=True))
                    .limit(2)
                )
            )
    if len(rows) != 1:
        return None
    row = rows[0]
    check = UpgradeCheck.from_json(row.answer) if row.answer is not None else None
    checked_at = row.checked_at if row.checked_at.tzinfo else row.checked_at.replace(tzinfo=UTC)
    return StoredCheck(row.request_hash, check, checked_at)


def prune_checks(sessions: sessionmaker[Session], older_than: timedelta) -> int:
    """Delete answers older than ``older_than``; returns how many (for a periodic task)."""
    cutoff = datetime.now(UTC) - older_than
    with sessions() as session:
        result = session.execute(delete(UpgradeCheckRecord).where(UpgradeCheckRecord.checked_at < cutoff))
        session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
