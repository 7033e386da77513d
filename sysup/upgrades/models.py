"""The table of answered upgrade checks, so ``GET /api/upgrade-check/{hash}`` works from any API process.

One row per request hash; a repeated check overwrites its row (a new release changes the answer).
``answer`` is :meth:`UpgradeCheck.to_json` or ``NULL`` for "up to date" (answered 204).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from sysup.database import Base

__all__ = ["UpgradeCheckRecord"]


class UpgradeCheckRecord(Base):
    """The last answer to one upgrade-check request."""

    __tablename__ = "upgrade_checks"

    request_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    distro: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(128))
    answer: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    #: When the answer was computed (UTC); old rows are pruned by :func:`prune_checks`.
    checked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
