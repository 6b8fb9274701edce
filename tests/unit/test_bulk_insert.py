"""insert_rows stores what a plain executemany INSERT stores, byte for byte, on both
databases: the sweeps' outbox and audit rows are read back by the sender, the admin pages
and the audit export, which must not tell how a row was written."""

import uuid
from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import event, insert, select

from familylink.extensions import db
from familylink.models import AuditEvent, OutboxEmail, OutboxStatus, Role
from familylink.services.bulk import insert_rows
from tests.factories import create_user

# Texts a body or a detail may hold: accents, an emoji, quotes, a backslash, control
# characters, markup, and what looks like a JSON escape.
TEXTS = [
    "plain",
    "Señora Núñez 😀",
    'a "quoted" \\ back\\slash',
    "line\nbreak\ttab\x01\x1f",
    "<b>&amp;</b> \\u0041 ' ''",
    "",
]
INSTANTS = [
    datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
    datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC),
    datetime(2026, 3, 1, 7, 30, 5, 7, tzinfo=timezone(timedelta(hours=-5))),
]


def _outbox_rows(prefix: str, user_id: int) -> list[dict]:
    """Rows shaped as mail._row makes them (every key, in its order)."""
    rows = []
    for i in range(12):
        text = TEXTS[i % len(TEXTS)]
        rows.append(
            {
                "kind": "session_reminder",
                "to_address": f"person{i}@example.org",
                "to_user_id": user_id if i % 2 else None,
                "subject": text[:200],
                "text_body": text * 3,
                "html_body": f"<p>{text}</p>",
                "dedupe_key": f"{prefix}:{i}",
                "patient_id": None if i % 3 else user_id,
                "required_scope": "sessions" if i % 2 else None,
                "attachment_name": None,
                "attachment_type": None,
                "attachment_data": None,
                "created_at": INSTANTS[0],
                "next_attempt_at": INSTANTS[i % len(INSTANTS)],
                "not_after": None if i % 4 == 0 else INSTANTS[(i + 1) % len(INSTANTS)],
                "status": OutboxStatus.PENDING,
                "attempts": 0,
            }
        )
    return rows


def _audit_rows(user_id: int) -> list[dict]:
    """Rows shaped as audit.values makes them, with record_many's insert_key."""
    details = [None, {"count": 3, "name": TEXTS[1]}, {"nested": {"list": [1, "x", None]}}]
    return [
        {
            "at": INSTANTS[i % len(INSTANTS)],
            "actor_id": user_id if i % 2 else None,
            "actor_role": "therapist" if i % 2 else None,
            "action": "email_queued",
            "object_type": "outbox_emails",
            "object_id": i,
            "patient_id": user_id,
            "recipient_id": None,
            "outcome": "success" if i % 3 else "refused",
            "ip": "203.0.113.9" if i % 2 else None,
            "request_id": None,
            "detail": details[i % len(details)],
            "insert_key": uuid.UUID(int=i + 1),
        }
        for i in range(9)
    ]


def _stored(table, order_by: str, where: str = "") -> list[tuple]:
    """The rows as the driver reads them back, without id: what each path stored."""
    names = ", ".join(column.name for column in table.columns if column.name != "id")
    connection = db.session.connection()
    return list(
        connection.exec_driver_sql(
            f"SELECT {names} FROM {table.name} {where} ORDER BY {order_by}"
        ).all()
    )


def _same_outbox_rows() -> int:
    """Compare the rows keyed bulk:… (insert_rows) with those keyed many:… (executemany),
    column by column; return how many there are of each."""
    outbox = OutboxEmail.__table__
    bulk = _stored(outbox, "id", "WHERE substr(dedupe_key, 1, 5) = 'bulk:'")
    many = _stored(outbox, "id", "WHERE substr(dedupe_key, 1, 5) = 'many:'")
    key = [column.name for column in outbox.columns if column.name != "id"].index("dedupe_key")
    for stored, expected in zip(bulk, many, strict=True):
        assert stored[key].removeprefix("bulk:") == expected[key].removeprefix("many:")
        assert stored[:key] + stored[key + 1 :] == expected[:key] + expected[key + 1 :]
    return len(bulk)


def test_outbox_rows_are_stored_as_executemany_stores_them(app_ctx):
    user = create_user(Role.PATIENT, email="bulk@example.org")
    outbox = OutboxEmail.__table__
    connection = db.session.connection()
    insert_rows(connection, outbox, _outbox_rows("bulk", user.id))
    connection.execute(insert(outbox), _outbox_rows("many", user.id))

    assert _same_outbox_rows() == 12


def test_audit_rows_are_stored_as_executemany_stores_them(app_ctx):
    user = create_user(Role.PATIENT, email="bulk@example.org")
    audit = AuditEvent.__table__
    connection = db.session.connection()
    insert_rows(connection, audit, _audit_rows(user.id))
    bulk = _stored(audit, "id")
    connection.execute(insert(audit), _audit_rows(user.id))
    both = _stored(audit, "id")

    assert len(bulk) == 9
    assert both[9:] == bulk == both[:9]


def test_rows_with_an_attachment_are_stored_as_executemany_stores_them(app_ctx):
    user = create_user(Role.PATIENT, email="bulk@example.org")
    outbox = OutboxEmail.__table__
    rows = {prefix: _outbox_rows(prefix, user.id)[:3] for prefix in ("bulk", "many")}
    for row in [*rows["bulk"], *rows["many"]]:
        row |= {"attachment_name": "invite.ics", "attachment_type": "text/calendar"}
        row["attachment_data"] = bytes(range(256))
    connection = db.session.connection()
    insert_rows(connection, outbox, rows["bulk"])
    connection.execute(insert(outbox), rows["many"])

    assert _same_outbox_rows() == 3
    data = db.session.scalars(select(outbox.c.attachment_data)).all()
    assert data == [bytes(range(256))] * 6


def _queue_new(connection, rows: list[dict]) -> list:
    """As mail queues emails: the rows whose dedupe key is new, with their ids."""
    outbox = OutboxEmail.__table__
    returning = (outbox.c.id, outbox.c.dedupe_key)
    return insert_rows(
        connection, outbox, rows, skip_existing=outbox.c.dedupe_key, returning=returning
    )


def test_skipping_existing_keys_returns_only_the_rows_inserted(app_ctx):
    user = create_user(Role.PATIENT, email="bulk@example.org")
    outbox = OutboxEmail.__table__
    connection = db.session.connection()
    rows = _outbox_rows("skip", user.id)
    (before,) = insert_rows(connection, outbox, rows[1:2], returning=(outbox.c.id,))
    # Overlapping sweeps may bring the same key twice in one batch too: it is written once.
    batch = [rows[0], rows[1], rows[2], {**rows[2], "subject": "again"}]

    added = _queue_new(connection, batch)

    assert sorted(key for _, key in added) == ["skip:0", "skip:2"]
    stored = dict(db.session.execute(select(outbox.c.dedupe_key, outbox.c.id)).all())
    assert stored == {"skip:1": before.id, **{key: row_id for row_id, key in added}}
    subject = db.session.scalar(select(outbox.c.subject).where(outbox.c.dedupe_key == "skip:2"))
    assert subject == rows[2]["subject"]


def test_thousands_of_rows_with_returning_are_one_statement(app_ctx):
    # The reminder sweep's outbox INSERT: executemany with RETURNING went as one statement
    # per few hundred rows, each row's values bound one by one.
    user = create_user(Role.PATIENT, email="bulk@example.org")
    rows = [
        {**row, "dedupe_key": f"many:{i}"} for i, row in enumerate(_outbox_rows("x", user.id) * 250)
    ]
    connection = db.session.connection()
    statements = []

    def sent(*args):
        statements.append(args)

    event.listen(connection, "before_cursor_execute", sent)
    try:
        added = _queue_new(connection, rows)
    finally:
        event.remove(connection, "before_cursor_execute", sent)
    assert len(added) == 3000
    assert len(statements) == 1
