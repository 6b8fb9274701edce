"""Many rows in one INSERT, for the sweeps that write thousands at once.

On PostgreSQL the rows travel as one JSON document (`INSERT … SELECT … FROM
json_populate_recordset`): psycopg writes a list parameter element by element, escaping
each, and runs an executemany statement by statement; one JSON string is written at once.
It is `json`, not `jsonb`: the server then only checks the text before reading each row
from it, rather than building a jsonb value of the whole document first, and a json
column's value (an audit row's detail) is stored as written, as the ORM stores it, not
with its keys re-ordered.
On SQLite too (`INSERT … SELECT … FROM json_each`): sqlite3's executemany is one loop in
C, but SQLAlchemy binds each row's values first, one by one, and with RETURNING sends the
rows a few hundred at a time. Each value travels in the document as executemany would bind
it (the column type's own conversion: a UTC instant's text, a JSON column's text, a UUID's
hex), and SQLite stores what json_extract reads back: the same text, integer or NULL. Rows
holding what JSON text cannot carry as it is go by executemany still: bytes, a float, a
text with a NUL (json_extract cuts it there).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from operator import itemgetter
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
    text,
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
    dialect = connection.dialect
    shape, params = None, rows
    if len(rows) > 1 and dialect.name == "postgresql":
        shape, params = tuple(rows[0]), {"rows": json.dumps(rows, default=_json_value)}
    elif len(rows) > 1 and dialect.name == "sqlite":
        document = _sqlite_document(dialect, table, tuple(rows[0]), rows)
        if document is not None:
            shape, params = tuple(rows[0]), {"rows": document}
    statement = _insert(dialect.name, table, shape, skip_existing, returning)
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
    (several rows) of one JSON document given as the "rows" parameter: on PostgreSQL each
    row an object with those keys, on SQLite an array of their values in that order."""
    if skip_existing is None:
        base = insert(table)
    elif dialect_name == "postgresql":
        base = _PostgresqlSkipsExisting(table)
    else:
        base = _SqliteSkipsExisting(table)
    if json_names is None:
        statement = base
    elif dialect_name == "sqlite":
        each = func.json_each(bindparam("rows", type_=String())).table_valued("value")
        values = (
            func.json_extract(each.c.value, literal_column(f"'$[{index}]'"))
            for index in range(len(json_names))
        )
        # The WHERE is SQLite's own answer to INSERT … SELECT … ON CONFLICT being ambiguous.
        statement = base.from_select(list(json_names), select(*values).where(text("true")))
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


# The kind of a column whose values JSON text cannot carry as executemany binds them (bytes,
# a float, a Decimal): a row with such a value goes by executemany.
NOT_JSON_TEXT = "not JSON text"


def _sqlite_document(dialect, table: Table, names: tuple, rows: list[dict]) -> str | None:
    """The rows as one JSON array of arrays, each value as executemany binds it, or None
    when some value cannot travel as JSON text."""
    columns = []  # map(), not comprehensions: a page's few rows cost no more than before
    for name, kind, process in _sqlite_columns(dialect, table, names):
        column = list(map(itemgetter(name), rows))
        if kind == NOT_JSON_TEXT:
            if column.count(None) != len(column):
                return None
        elif kind is datetime:
            # A sweep's rows share a few instants: each converted once.
            distinct = set(column)
            converted = dict(zip(distinct, map(process, distinct), strict=True))
            column = list(map(converted.__getitem__, column))
        elif process is not None:
            column = list(map(process, column))
        columns.append(column)
    try:
        document = json.dumps(
            list(zip(*columns, strict=True)), ensure_ascii=False, check_circular=False
        )
    except TypeError:
        return None
    return None if "\\u0000" in document else document


@cache
def _sqlite_columns(dialect, table: Table, names: tuple) -> tuple:
    """Each column's name, kind (NOT_JSON_TEXT, datetime or its other Python type) and bind
    conversion, found once per shape: a page writes its few audit rows this way too."""
    found = []
    for name in names:
        type_ = table.c[name].type
        try:  # a TypeDecorator's (a UTC instant's) is its stored type's
            kind = getattr(type_, "impl_instance", type_).python_type
        except NotImplementedError:
            kind = None
        if kind in (bytes, float, Decimal):
            kind = NOT_JSON_TEXT
        found.append((name, kind, type_.dialect_impl(dialect).bind_processor(dialect)))
    return tuple(found)


def _json_value(value):
    if isinstance(value, datetime) and value.tzinfo is not None:
        # In UTC: a timestamp column keeps the wall time of the text and drops its offset.
        return value.astimezone(UTC).isoformat()
    if isinstance(value, bytes):
        return "\\x" + value.hex()  # bytea's text form
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not written by insert_rows: {value!r}")
