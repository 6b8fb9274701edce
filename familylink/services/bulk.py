"""Many rows in one INSERT, for the sweeps that write thousands at once.

On PostgreSQL the rows travel as one JSON document (`INSERT … SELECT … FROM
jsonb_populate_recordset`): psycopg writes a list parameter element by element, escaping
each, and runs an executemany statement by statement; one JSON string is written at once.
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
    if skip_existing is None and not returning:
        # Every signed-in page writes its audit rows this way: the statement is built once.
        connection.execute(_insert(connection.dialect.name, table, shape, inline=True), params)
        return []
    statement = _insert(connection.dialect.name, table, shape)
    if skip_existing is not None:
        statement = statement.on_conflict_do_nothing(index_elements=[skip_existing])
    if returning:
        return connection.execute(statement.returning(*returning), params).all()
    connection.execute(statement.inline(), params)
    return []


@cache
def _insert(dialect_name: str, table: Table, json_names: tuple | None, *, inline=False):
    """The INSERT of rows given as parameters; with `json_names` (PostgreSQL, several rows)
    of one JSON document given as the "rows" parameter, each row having those keys."""
    # Inline, nothing to skip: the generic INSERT, whose compiled form is cached (the
    # dialects' own have no cache key, so each execution would compile them again).
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    base = insert(table) if inline else dialect.insert(table)
    if json_names is None:
        statement = base
    else:
        document = cast(bindparam("rows", type_=String()), postgresql.JSONB)
        source = func.jsonb_populate_recordset(literal_column(f"NULL::{table.name}"), document)
        statement = base.from_select(list(json_names), select(*source.table_valued(*json_names).c))
    # inline(): nothing is read back (a single row would otherwise fetch its id).
    return statement.inline() if inline else statement


def _json_value(value):
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.isoformat()
    if isinstance(value, bytes):
        return "\\x" + value.hex()  # bytea's text form
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not written by insert_rows: {value!r}")
