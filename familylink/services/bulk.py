"""Many rows in one INSERT, for the sweeps that write thousands at once.

On PostgreSQL the rows travel as one JSON document (`INSERT … SELECT … FROM
json_populate_recordset`): psycopg writes a list parameter element by element, escaping
each, and runs an executemany statement by statement; one JSON string is written at once.
It is `json`, not `jsonb`: the server then only checks the text before reading each row
from it, rather than building a jsonb value of the whole document first, and a json
column's value (an audit row's detail) is stored as written, as the ORM stores it, not
with its keys re-ordered.
On SQLite, sqlite3's executemany is already one loop in C.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from uuid import UUID

from sqlalchemy import (
    Column,
    Connection,
    String,
    Table,
    bindparam,
    cast,
    func,
    insert,
    literal_column,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.visitors import InternalTraversal


def insert_rows(
    connection: Connection,
    table: Table,
    rows: list[dict],
    *,
    skip_existing: Column | None = None,
    returning: tuple[Column, ...] = (),
) -> list:
    """Insert `rows` (dicts with the same keys) in one statement and return the `returning`
    columns of those inserted. With `skip_existing` (a unique column), a row whose value is
    there already, even one another transaction committed a moment ago, is skipped."""
    if not rows:
        return []
    if connection.dialect.name == "postgresql" and len(rows) > 1:
        shape, params = tuple(rows[0]), {"rows": json.dumps(rows, default=_json_value)}
    else:
        shape, params = None, rows
    statement = _insert(connection.dialect.name, table, shape, skip_existing, returning)
    if returning:
        return connection.execute(statement, params).all()
    connection.execute(statement, params)
    return []


# The cache key of a dialect's INSERT … ON CONFLICT (column) DO NOTHING: the standard
# INSERT's (table, source, RETURNING) and the name of the one column it skips on, the only
# ON CONFLICT clause `_insert` gives it. The dialects' own INSERT has no cache key
# (SQLAlchemy 2.0), so every execution compiled it again (each booking's emails, each
# sweep's); SQLAlchemy reads these two attributes from each class's own namespace.
_SKIPPING_KEY = [
    *(item for item in Insert._traverse_internals if item[0] != "_post_values_clause"),
    ("skipped_on", InternalTraversal.dp_string),
]


class _PostgresqlSkipsExisting(postgresql.Insert):
    inherit_cache = False
    _cache_key_traversal = _SKIPPING_KEY


class _SqliteSkipsExisting(sqlite.Insert):
    inherit_cache = False
    _cache_key_traversal = _SKIPPING_KEY


@cache
def _insert(
    dialect_name: str,
    table: Table,
    json_names: tuple | None,
    skip_existing: Column | None = None,
    returning: tuple[Column, ...] = (),
):
    """The INSERT of rows given as parameters, built once for each shape (a statement and
    its cache key cost more to build than a page's INSERT takes to run); with `json_names`
    (PostgreSQL, several rows) of one JSON document given as the "rows" parameter, each row
    having those keys."""
    if skip_existing is None:
        base = insert(table)
    elif dialect_name == "postgresql":
        base = _PostgresqlSkipsExisting(table)
    else:
        base = _SqliteSkipsExisting(table)
    if json_names is None:
        statement = base
    else:
        document = cast(bindparam("rows", type_=String()), postgresql.JSON)
        source = func.json_populate_recordset(literal_column(f"NULL::{table.name}"), document)
        statement = base.from_select(list(json_names), select(*source.table_valued(*json_names).c))
    if skip_existing is not None:
        statement = statement.on_conflict_do_nothing(index_elements=[skip_existing])
        statement.skipped_on = skip_existing.name
    if returning:
        return statement.returning(*returning)
    # inline(): nothing is read back (a single row would otherwise fetch its id).
    return statement.inline()


def _json_value(value):
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.isoformat()
    if isinstance(value, bytes):
        return "\\x" + value.hex()  # bytea's text form
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not written by insert_rows: {value!r}")
