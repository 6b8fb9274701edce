"""Column types, the partial index, the labelled enum and the version columns models share."""

import enum
from datetime import UTC, datetime

from sqlalchemy import DateTime, Index, Integer, Text, text
from sqlalchemy.orm import Mapped, mapped_column
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


class LabelledEnum(enum.StrEnum):
    """A stored value with the translatable words people see for it, and, for some, a line
    saying more: members are written `NAME = "value", _l("Label")[, _l("A line more")]`."""

    label: str
    description: str | None

    def __new__(cls, value: str, label, description=None):
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label
        member.description = description
        return member


class VersionColumns:
    """A kept version of something, numbered within it and never changed afterwards: a
    change is a new version (a module's saved text, a practice message, a progress update)."""

    number: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TextVersionColumns(VersionColumns):
    """A version that is one plain text, as written (a practice message, a progress update)."""

    text: Mapped[str] = mapped_column(Text)
