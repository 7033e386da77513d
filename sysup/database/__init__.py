"""SQL state shared by every stage: the declarative base, engines and sessions."""

from sysup.database.base import Base
from sysup.database.engine import create_engine_for, session_factory

__all__ = ["Base", "create_engine_for", "session_factory"]
