"""Column types, and the partial index, shared by every model."""

from datetime import UTC, datetime

from sqlalchemy import DateTime, Index, text
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


def partial_index(name: str, *columns: str, where: str, unique: bool = False) -> Index:
    """An index over the rows matching `where` only, the same on PostgreSQL and SQLite."""
    condition = text(where)
    return Index(name, *columns, unique=unique, postgresql_where=condition, sqlite_where=condition)


class UTCDateTime(TypeDecorator):
    """A UTC instant: stored naive (in UTC) on every database, always returned timezone-aware.

    SQLite has no time zone support, so storing naive UTC everywhere keeps both databases
    identical; refusing naive input catches local times slipping in.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a UTC instant is required")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC)
