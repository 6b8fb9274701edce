"""The outbox and its sender, against a real SMTP server on loopback."""

import copy
import email
import email.policy
import logging
import signal
import smtplib
import time
from datetime import timedelta
from email.headerregistry import BaseHeader

import pytest
from sqlalchemy import Text, cast, event, func, select, update
from sqlalchemy.exc import OperationalError

from familylink.config import apply_database_defaults
from familylink.extensions import db
from familylink.models import AuditEvent, OutboxEmail, OutboxStatus, Role
from familylink.services import audit, mail
from familylink.services.mail import delivery
from familylink.services.program import program_row
from tests.conftest import DISCONNECT, free_port
from tests.factories import create_user


@pytest.fixture
def mail_ctx(mail_app):
    with mail_app.app_context():
        yield mail_app


def _queue(n, now, **extra):
    for i in range(n):
        mail.queue_email(
            "password_reset",
            to=f"person{i}@example.org",
            dedupe_key=f"test:{i}",
            now=now,
            context={"link": "https://familylink.test/reset/x", "recipient": None},
            **extra,
        )
    db.session.commit()


def _resets(addressed, **fields) -> list:
    """Password-reset emails to be queued together, one per (address, dedupe key)."""
    context = {"link": "https://familylink.test/reset/x", "recipient": None}
    return [
        mail.Queued("password_reset", to=to, dedupe_key=key, context=context, **fields)
        for to, key in addressed
    ]


def _statuses():
    return db.session.scalars(select(OutboxEmail.status).order_by(OutboxEmail.id)).all()


def test_queueing_the_same_dedupe_key_twice_queues_one_email(mail_ctx, now):
    _queue(1, now)
    _queue(1, now)
    assert len(_statuses()) == 1


def test_pending_emails_are_delivered_once(mail_ctx, smtp_server, now):
    _queue(3, now)
    first = mail.send_pending(now=now)
    second = mail.send_pending(now=now)
    assert (first.sent, second.sent) == (3, 0)
    assert len(smtp_server.messages) == 3
    assert _statuses() == ["sent"] * 3


def test_the_sender_name_is_the_programs_neutral_name(mail_ctx, smtp_server, now):
    _queue(1, now)
    mail.send_pending(now=now)
    message = smtp_server.parsed()[0]
    assert message["From"] == "Family Sessions <no-reply@familylink.localhost>"
    assert message["Subject"] == "Reset your password"


@pytest.mark.parametrize(
    "stored",
    [
        "Lakeside\r\nSessions",  # saved before the screen: made every email fail for good
        "Lakeside\nBcc: everyone@example.org",
        "Riverside Mental Health",  # saved before the screen: would reach every inbox
    ],
)
def test_a_stored_sender_name_that_would_break_or_reveal_gives_way_to_a_neutral_one(
    mail_ctx, smtp_server, now, stored
):
    program_row().sender_name = stored
    _queue(2, now)
    report = mail.send_pending(now=now)
    assert (report.sent, report.retried, report.failed) == (2, 0, 0)
    assert _statuses() == ["sent", "sent"]
    for message in smtp_server.parsed():
        assert message["From"] == "Family Sessions <no-reply@familylink.localhost>"
        assert message["Bcc"] is None
        # Nor does it reach the message itself: its signature and the closing line.
        for part in ("plain", "html"):
            body = message.get_body((part,)).get_content()
            assert stored.split()[0] not in body and "Family Sessions" in body


def test_every_email_has_text_and_html(mail_ctx, smtp_server, now):
    _queue(1, now)
    mail.send_pending(now=now)
    types = {part.get_content_type() for part in smtp_server.parsed()[0].walk()}
    assert {"text/plain", "text/html"} <= types


def test_a_temporary_refusal_is_retried_later_and_delivered_once(mail_ctx, smtp_server, now):
    smtp_server.handler.replies.append("451 Try again later")
    _queue(1, now)
    report = mail.send_pending(now=now)
    assert report.retried == 1 and smtp_server.messages == []
    row = db.session.scalar(select(OutboxEmail))
    assert row.status == OutboxStatus.PENDING and row.next_attempt_at > now
    assert mail.send_pending(now=now).sent == 0  # not due yet
    assert mail.send_pending(now=now + timedelta(hours=1)).sent == 1
    assert len(smtp_server.messages) == 1


def test_a_permanent_refusal_fails_without_retry(mail_ctx, smtp_server, now):
    smtp_server.handler.replies.append("550 No such mailbox")
    _queue(1, now)
    report = mail.send_pending(now=now)
    assert report.failed == 1
    assert _statuses() == ["failed"]
    assert mail.send_pending(now=now + timedelta(days=1)).sent == 0
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "email.failed"))


def test_nothing_is_lost_while_the_smtp_server_is_down(mail_ctx, smtp_server, now):
    _queue(2, now)
    smtp_server.stop()
    down = mail.send_pending(now=now)
    assert down.sent == 0 and _statuses() == ["pending", "pending"]
    smtp_server.restart()
    later = mail.send_pending(now=now + timedelta(hours=2))
    assert later.sent == 2 and len(smtp_server.messages) == 2


def test_rows_past_their_retry_limit_are_marked_failed(mail_ctx, smtp_server, now):
    mail_ctx.config["MAIL_MAX_ATTEMPTS"] = 2
    smtp_server.handler.replies.extend(["451 later", "451 later"])
    _queue(1, now)
    mail.send_pending(now=now)
    mail.send_pending(now=now + timedelta(hours=1))
    assert _statuses() == ["failed"]


def test_an_email_past_its_useful_time_is_dropped(mail_ctx, smtp_server, now):
    _queue(1, now, not_after=now + timedelta(minutes=5))
    report = mail.send_pending(now=now + timedelta(minutes=6))
    assert report.cancelled == 1 and smtp_server.messages == []


def test_a_leased_row_is_not_sent_by_another_worker_until_the_lease_ends(mail_ctx, now):
    _queue(1, now)
    claimed = delivery.claim_batch(now=now, limit=10, worker="a")
    assert len(claimed) == 1
    assert delivery.claim_batch(now=now, limit=10, worker="b") == []
    later = now + timedelta(seconds=mail_ctx.config["MAIL_LEASE_SECONDS"] + 1)
    assert len(delivery.claim_batch(now=later, limit=10, worker="b")) == 1


def test_the_dev_mailbox_receives_mail_when_no_server_is_set(app_ctx, now):
    _queue(1, now)
    assert mail.send_pending(now=now).sent == 1
    assert _statuses() == ["sent"]


def test_without_a_server_or_dev_mailbox_mail_stays_queued(app_ctx, now):
    app_ctx.config["DEV_MAILBOX"] = False
    _queue(1, now)
    assert mail.send_pending(now=now).sent == 0
    assert _statuses() == ["pending"]


def test_tls_connections_verify_the_servers_certificate(mail_ctx, smtp_server, now):
    # The test server speaks no TLS: a verifying STARTTLS must refuse rather than send in clear.
    mail_ctx.config["MAIL_USE_TLS"] = True
    mail_ctx.extensions["mail"].use_tls = True
    _queue(1, now)
    report = mail.send_pending(now=now)
    assert report.sent == 0 and smtp_server.messages == []


def test_the_guard_refuses_unexpected_smtp_connections():
    import smtplib

    with pytest.raises(AssertionError, match="unexpected SMTP connection"):
        smtplib.SMTP("127.0.0.1", free_port())


def _row():
    db.session.rollback()
    return db.session.scalar(select(OutboxEmail))


@pytest.mark.parametrize(
    "refusal", ["421 Service not available", "451 Try again later", DISCONNECT]
)
def test_a_transient_failure_before_250_is_retried_and_delivered_once(
    mail_ctx, smtp_server, now, refusal
):
    smtp_server.handler.replies.append(refusal)
    _queue(1, now)
    assert mail.send_pending(now=now).retried == 1
    row = _row()
    assert row.status == OutboxStatus.PENDING and row.attempts == 1 and row.last_error
    assert mail.send_pending(now=row.next_attempt_at).sent == 1
    assert len(smtp_server.messages) == 1 and _row().status == OutboxStatus.SENT


def test_retries_wait_longer_each_time(mail_ctx, smtp_server, now):
    smtp_server.handler.replies.extend(["421 busy", "451 later", DISCONNECT, "452 full"])
    _queue(1, now)
    delays, moment = [], now
    for _ in range(4):
        mail.send_pending(now=moment)
        row = _row()
        delays.append(row.next_attempt_at - moment)
        moment = row.next_attempt_at
    assert delays == sorted(delays) and len(set(delays)) == 4
    assert mail.send_pending(now=moment).sent == 1
    assert len(smtp_server.messages) == 1


def test_retry_delays_are_jittered():
    delays = {delivery._backoff(3) for _ in range(20)}
    assert len(delays) > 1
    assert all(timedelta(seconds=96) <= d <= timedelta(seconds=144) for d in delays)


def test_a_refused_message_does_not_hold_up_the_rest_of_the_batch(mail_ctx, smtp_server, now):
    smtp_server.handler.replies.append("451 Try again later")
    _queue(3, now)
    report = mail.send_pending(now=now)
    assert (report.retried, report.sent) == (1, 2)


def test_after_the_server_closes_the_connection_the_rest_go_on_the_next_pass(
    mail_ctx, smtp_server, now
):
    smtp_server.handler.replies.append("421 Closing")
    _queue(3, now)
    first = mail.send_pending(now=now)
    assert (first.retried, first.sent) == (1, 0)
    assert _statuses() == ["pending"] * 3
    second = mail.send_pending(now=now + timedelta(seconds=10))
    assert second.sent == 2  # the refused one waits for its own retry time
    assert mail.send_pending(now=now + timedelta(hours=1)).sent == 1
    assert len(smtp_server.messages) == 3


@pytest.mark.parametrize(("bad_id", "statuses"), [(1, ["failed", "sent"]), (2, ["sent", "failed"])])
def test_a_message_that_cannot_be_built_fails_alone_and_is_not_retried(
    mail_ctx, smtp_server, now, bad_id, statuses
):
    """First or next in the batch, the unbuildable one fails and the other is delivered."""
    _queue(2, now)
    db.session.execute(
        update(OutboxEmail)
        .where(OutboxEmail.id == bad_id)
        .values(to_address="bad\nBcc: x@example.org")
    )
    db.session.commit()
    report = mail.send_pending(now=now)
    assert (report.sent, report.failed) == (1, 1)
    assert _statuses() == statuses
    assert len(smtp_server.messages) == 1


def test_when_recording_a_sent_email_fails_the_pass_stops_before_the_next_is_accepted(
    mail_ctx, smtp_server, now
):
    _queue(2, now)
    items = delivery.claim_batch(now=now, limit=10, worker="w")
    items[0].attempts = 2**70  # out of range for the column: the record of the first fails
    with pytest.raises(Exception):  # noqa: B017 - each database driver raises its own error
        delivery.deliver_batch(items, now=now)
    db.session.rollback()
    # The first was accepted but not recorded (it will go again when its lease ends, the
    # one case the README names); the second never reached DATA.
    assert len(smtp_server.messages) == 1
    assert _statuses() == ["pending", "pending"]
    sent_events = select(AuditEvent).where(AuditEvent.action == "email.sent")
    assert db.session.scalars(sent_events).all() == []
    later = now + timedelta(seconds=mail_ctx.config["MAIL_LEASE_SECONDS"] + 1)
    assert mail.send_pending(now=later).sent == 2


def test_every_message_names_its_outbox_row(mail_ctx, smtp_server, now):
    _queue(2, now)
    mail.send_pending(now=now)
    ids = db.session.scalars(select(OutboxEmail.id).order_by(OutboxEmail.id)).all()
    assert sorted(smtp_server.outbox_ids()) == ids


def test_the_message_id_is_the_same_on_every_attempt_and_hides_the_dedupe_key(
    mail_ctx, smtp_server, now
):
    smtp_server.handler.replies.append(DISCONNECT)
    _queue(1, now)
    mail.send_pending(now=now)
    mail.send_pending(now=now + timedelta(hours=1))
    expected = delivery.message_id("test:0")
    assert smtp_server.parsed()[0]["Message-ID"] == expected
    assert "test" not in expected.split("@")[0]
    assert delivery.message_id("test:1") != expected


def test_no_header_carries_more_than_the_row_id_and_the_two_addresses(mail_ctx, smtp_server, now):
    _queue(1, now)
    mail.send_pending(now=now)
    message = smtp_server.parsed()[0]
    assert set(message.keys()) <= {
        "Content-Type",
        "MIME-Version",
        "Subject",
        "From",
        "To",
        "Date",
        "Message-ID",
        "X-FamilyLink-Id",
    }


def test_a_sender_past_its_deadline_hands_the_batch_back(mail_ctx, smtp_server, now):
    _queue(2, now)
    rows = delivery.claim_batch(now=now, limit=10, worker="slow")
    report = delivery.deliver_batch(rows, now=now, deadline=time.monotonic() - 1)
    assert report.sent == 0 and smtp_server.messages == []
    assert len(delivery.claim_batch(now=now, limit=10, worker="next")) == 2


def test_a_sender_whose_lease_was_taken_over_does_not_overwrite_the_new_claim(
    mail_ctx, smtp_server, now
):
    _queue(1, now)
    rows = delivery.claim_batch(now=now, limit=10, worker="old")  # the old worker's view
    later = now + timedelta(seconds=mail_ctx.config["MAIL_LEASE_SECONDS"] + 1)
    delivery.claim_batch(now=later, limit=10, worker="new")
    delivery.deliver_batch(rows, now=now)
    row = _row()
    assert row.claimed_by.startswith("new:") and row.status == OutboxStatus.PENDING
    # Nor is the sending audited: the outcome and its audit row go together or not at all.
    assert (
        db.session.scalars(select(AuditEvent.action).where(AuditEvent.action == "email.sent")).all()
        == []
    )


def test_sqlite_files_wait_for_a_busy_write_lock():
    config = {"SQLALCHEMY_DATABASE_URI": "sqlite:////tmp/x.db", "SQLALCHEMY_ENGINE_OPTIONS": {}}
    apply_database_defaults(config)
    assert config["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"]["timeout"] >= 5
    postgres = {"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://db/x"}
    apply_database_defaults(postgres)
    assert "connect_args" not in postgres["SQLALCHEMY_ENGINE_OPTIONS"]


def test_each_sent_email_is_in_the_audit_log_with_its_kind(mail_ctx, smtp_server, now):
    _queue(2, now)
    mail.send_pending(now=now)
    db.session.rollback()
    events = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "email.sent").order_by(AuditEvent.id)
    ).all()
    rows = db.session.scalars(select(OutboxEmail).order_by(OutboxEmail.id)).all()
    assert [(e.object_type, e.object_id, e.detail) for e in events] == [
        ("outbox_emails", row.id, {"kind": "password_reset"}) for row in rows
    ]
    soon = now + timedelta(minutes=1)  # each batch acts at the pass's start plus time taken
    assert all(now <= e.at < soon for e in events)
    assert all(now <= row.sent_at < soon for row in rows)
    assert all(row.attempts == 1 and row.locked_until is None for row in rows)


def test_accents_long_html_lines_and_a_calendar_attachment_arrive_intact(
    mail_ctx, smtp_server, now
):
    program = program_row()
    program.sender_name = "Séances en famille"
    _queue(1, now)  # not alone in the batch
    row = mail.queue_email(
        "password_reset",
        to="zoe@example.org",
        dedupe_key="intact",
        now=now,
        context={"link": "https://familylink.test/reset/" + "x" * 1500},
        attachment=mail.Attachment(
            "session.ics", "text/calendar; method=REQUEST", b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
        ),
    )
    row.text_body = written = "Bonjour Zoé,\n\n" + "a" * 2000 + "\n. a line starting with a dot\n"
    db.session.commit()
    assert mail.send_pending(now=now).sent == 2
    (message,) = [m for m in smtp_server.parsed() if m["To"] == "zoe@example.org"]
    assert message["From"] == "Séances en famille <no-reply@familylink.localhost>"
    text = message.get_body(("plain",)).get_content()
    assert text.replace("\r\n", "\n") == written  # CRLF on the wire; the row keeps none
    html = message.get_body(("html",)).get_content()
    assert "x" * 1500 in html
    (ics,) = [part for part in message.iter_attachments()]
    assert ics.get_content_type() == "text/calendar" and ics.get_param("method") == "REQUEST"
    assert ics.get_filename() == "session.ics"
    assert ics.get_payload(decode=True) == b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"


def _queue_about_a_patient(now):
    """One email to a family member about a patient, needing the scheduling scope."""
    patient = create_user(Role.PATIENT, mfa=False)
    family = create_user(Role.FAMILY)
    db.session.flush()
    row = mail.queue_email(
        "password_reset",
        to=family,
        dedupe_key="about-a-patient",
        now=now,
        context={"link": "https://familylink.test/reset/x"},
        patient_id=patient.id,
        required_scope="scheduling",
    )
    db.session.commit()
    return row, family, patient


def test_a_delivered_emails_audit_row_has_the_shape_of_one_written_by_audit_record(
    mail_ctx, smtp_server, now
):
    row, family, patient = _queue_about_a_patient(now)
    assert mail.send_pending(now=now, consent_check=lambda pairs, scope, *, now: pairs).sent == 1
    reference = audit.record(
        "email.sent",
        object_type="outbox_emails",
        object_id=row.id,
        patient_id=patient.id,
        recipient_id=family.id,
        detail={"kind": "password_reset"},
        now=now,
    )
    db.session.commit()
    # Read as table rows: insert_key is written by the ORM but not mapped to an attribute.
    events = AuditEvent.__table__
    rows = db.session.execute(
        select(*events.c).where(events.c.action == "email.sent").order_by(events.c.id)
    ).mappings()
    sent, written = [dict(row) for row in rows]
    assert written["id"] == reference.id
    assert [c for c, v in sent.items() if v is None] == [c for c, v in written.items() if v is None]
    assert sent["insert_key"] is not None and sent["insert_key"] != written["insert_key"]
    # The same values, but for the row's own id and key, and the instant (the pass's `now`
    # plus the time it has taken).
    for column in ("id", "insert_key", "at"):
        del sent[column], written[column]
    assert sent == written
    assert sent["detail"] == {"kind": "password_reset"}


def test_the_consent_check_given_decides_and_is_asked_once_per_batch(mail_ctx, smtp_server, now):
    row, family, patient = _queue_about_a_patient(now)
    asked = []

    def nobody(pairs, scope, *, now):
        asked.append((pairs, scope))
        return set()

    report = mail.send_pending(now=now, consent_check=nobody)
    assert report.cancelled == 1 and smtp_server.messages == []
    assert asked == [({(family.id, patient.id)}, "scheduling")]
    assert _row().last_error == "consent ended"


def test_without_a_consent_check_nothing_is_leased_or_sent(mail_ctx, smtp_server, now):
    _queue(1, now)
    del mail_ctx.extensions[mail.CONSENT_CHECK]
    with pytest.raises(RuntimeError, match="no consent check"):
        mail.send_pending(now=now)
    items = delivery.claim_batch(now=now, limit=10, worker="w")  # not leased by the failed pass
    with pytest.raises(RuntimeError, match="no consent check"):
        delivery.deliver_batch(items, now=now)
    assert smtp_server.messages == [] and _statuses() == ["pending"]


def test_the_mail_worker_refuses_to_start_without_a_consent_check(mail_app, monkeypatch):
    """It logs a pass that fails and goes on; a missing check is not such a failure."""
    del mail_app.extensions[mail.CONSENT_CHECK]
    monkeypatch.setattr(signal, "signal", lambda *args: None)  # the test process keeps its own
    result = mail_app.test_cli_runner().invoke(
        args=["mail", "worker", "--passes", "1", "--interval", "1"]
    )
    assert isinstance(result.exception, RuntimeError), result.output
    assert "no consent check" in str(result.exception)
    assert "started" not in result.output


def test_queueing_many_skips_keys_queued_before_and_audits_only_what_it_adds(mail_ctx, now):
    _queue(1, now)  # test:0, queued one by one
    emails = _resets(
        [(f"Person{i}@example.org", f"test:{i}") for i in range(3)],
        send_at=now + timedelta(hours=1),
    )
    assert mail.queue_many(emails, now=now) == 2
    db.session.commit()
    assert mail.queue_many(emails, now=now) == 0
    rows = db.session.scalars(select(OutboxEmail).order_by(OutboxEmail.id)).all()
    assert [row.to_address for row in rows] == [f"person{i}@example.org" for i in range(3)]
    assert [row.next_attempt_at for row in rows] == [now] + [now + timedelta(hours=1)] * 2
    assert all(row.status == OutboxStatus.PENDING and row.attempts == 0 for row in rows)
    assert "https://familylink.test/reset/x" in rows[2].text_body
    queued = select(AuditEvent.object_id).where(AuditEvent.action == "email.queued")
    assert sorted(db.session.scalars(queued)) == [row.id for row in rows]


def test_audit_rows_written_in_bulk_are_the_rows_record_writes(mail_ctx, now):
    detail = {"kind": "reminder", "token": "must-not-be-logged"}
    fields = {"object_type": "outbox_emails", "object_id": 7, "detail": detail, "now": now}
    audit.set_origin("192.0.2.1", "request-1")
    try:
        audit.record_many([audit.values("email.queued", **fields)])
        audit.record("email.queued", **fields)
        db.session.commit()
    finally:
        audit.clear_origin()
    events = AuditEvent.__table__
    bulk, one = [
        dict(row) for row in db.session.execute(select(*events.c).order_by(events.c.id)).mappings()
    ]
    assert bulk["insert_key"] is not None
    for column in ("id", "insert_key"):
        del bulk[column], one[column]
    assert bulk == one
    assert bulk["detail"] == {"kind": "reminder"} and bulk["ip"] == "192.0.2.1"


def test_audit_details_written_in_bulk_are_stored_as_record_stores_them(mail_ctx, now):
    # Several rows go to PostgreSQL as one document; as jsonb it would store each detail
    # re-ordered (shorter keys first), not as the text `audit.record` stores.
    detail = {"scope": "scheduling", "kind": "reminder"}
    fields = {"object_type": "outbox_emails", "detail": detail, "now": now}
    audit.record_many([audit.values("email.queued", object_id=i, **fields) for i in range(2)])
    audit.record("email.queued", object_id=2, **fields)
    db.session.commit()
    events = AuditEvent.__table__
    stored = db.session.scalars(select(cast(events.c.detail, Text)).order_by(events.c.id)).all()
    assert len(stored) == 3 and stored[0] == stored[1] == stored[2]


def test_audit_rows_written_in_bulk_each_get_their_own_insert_key(mail_ctx, now):
    # On PostgreSQL the rows go in one INSERT … SELECT, where a column default is one value
    # for the whole statement.
    fields = {"object_type": "outbox_emails", "now": now}
    audit.record_many([audit.values("email.queued", object_id=i, **fields) for i in range(3)])
    db.session.commit()
    keys = db.session.scalars(select(AuditEvent.__table__.c.insert_key)).all()
    assert len(keys) == 3 and None not in keys and len(set(keys)) == 3


def test_a_refusal_written_in_bulk_outlives_the_savepoint_it_refused(mail_ctx, now):
    with pytest.raises(RuntimeError), audit.keep_refusals(), db.session.begin_nested():
        audit.record_many([audit.values("email.refused", outcome="denied", now=now)])
        raise RuntimeError("refused")
    db.session.commit()
    actions = db.session.scalars(select(AuditEvent.action)).all()
    assert actions == ["email.refused"]


def test_a_pass_does_not_take_a_database_connection_per_message(mail_ctx, smtp_server, now):
    # Each check-out of a pooled connection has its cost (its events, a look at its socket);
    # a pass holds one connection for its records instead of taking one per message.
    _queue(12, now)
    checkouts = []

    def count(*_):
        checkouts.append(1)

    event.listen(db.engine, "checkout", count)
    try:
        assert mail.send_pending(now=now).sent == 12
    finally:
        event.remove(db.engine, "checkout", count)
    assert len(checkouts) < 6


def test_recording_a_sent_email_reads_nothing_back_from_the_audit_insert(
    mail_ctx, smtp_server, now
):
    # The audit row's id is never used: a RETURNING would only cost a round trip's reply.
    _queue(3, now)
    statements = []

    def keep(conn, cursor, statement, *_):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", keep)
    try:
        assert mail.send_pending(now=now).sent == 3
    finally:
        event.remove(db.engine, "before_cursor_execute", keep)
    audit_inserts = [s for s in statements if "INSERT INTO audit_events" in s]
    assert len(audit_inserts) == 3
    # On PostgreSQL the INSERT follows the row's UPDATE … RETURNING, in the same statement.
    assert not any("RETURNING" in s.partition("INSERT INTO audit_events")[2] for s in audit_inserts)


def test_a_batch_is_built_before_its_first_message_is_sent(mail_ctx, smtp_server, now, monkeypatch):
    # Between two messages the sender only sends and records: building sits before the loop.
    _queue(3, now)
    steps = []
    build, send = delivery.build_message, delivery.SmtpLink.send

    def building(item, sender):
        steps.append("build")
        return build(item, sender)

    def sending(self, message, sender, to):
        steps.append("send")
        return send(self, message, sender, to)

    monkeypatch.setattr(delivery, "build_message", building)
    monkeypatch.setattr(delivery.SmtpLink, "send", sending)
    assert mail.send_pending(now=now).sent == 3
    assert steps == ["build"] * 3 + ["send"] * 3


def test_every_kind_takes_its_subject_from_its_own_translated_template(mail_ctx, now):
    # The subject is a one-line template beside the text and HTML ones, translated like them:
    # no subject table in the code that a new kind could miss.
    templates = set(mail_ctx.jinja_env.list_templates())
    assert len(mail.KINDS) >= 22
    for kind in mail.KINDS:
        assert {f"email/{kind}.{end}" for end in ("subject.txt", "txt", "html")} <= templates
        source = mail_ctx.jinja_env.loader.get_source(
            mail_ctx.jinja_env, f"email/{kind}.subject.txt"
        )
        assert source[0].strip().startswith("{{ _(") and source[0].count("\n") == 1, kind
    mail.queue_email(
        "password_reset",
        to="person@example.org",
        dedupe_key="test:subject",
        now=now,
        context={"link": "https://familylink.test/reset/x"},
        locale="es",
    )
    (row,) = db.session.scalars(select(OutboxEmail)).all()
    assert row.subject == "Cambie su contraseña"


def test_emails_sharing_one_context_are_rendered_once_and_read_as_if_rendered_alone(
    mail_ctx, now, monkeypatch
):
    # A sweep's reminders of one session differ by the first name only: rendered once with a
    # marker, which must leave each email exactly as rendering it alone would (HTML-escaped).
    names = ["<b>Ana</b>&co Ruiz", "Bob O'Neil", "Zoë Ng"]
    people = [create_user(name=name, email=f"p{i}@example.org") for i, name in enumerate(names)]
    db.session.flush()
    context = {"link": "https://familylink.test/reset/x"}
    renders = []
    render = mail._render
    monkeypatch.setattr(mail, "_render", lambda *a: renders.append(a) or render(*a))
    shared = [mail.Queued("password_reset", p, f"shared:{p.id}", context=context) for p in people]
    assert mail.queue_many(shared, now=now) == 3
    assert len(renders) == 3  # subject, text and HTML once for the three
    for person in people:
        mail.queue_email("password_reset", to=person, dedupe_key=f"alone:{person.id}", now=now,
                         context=dict(context))  # fmt: skip
    rows = {row.dedupe_key: row for row in db.session.scalars(select(OutboxEmail))}
    for person in people:
        together, alone = rows[f"shared:{person.id}"], rows[f"alone:{person.id}"]
        parts = ("subject", "text_body", "html_body")
        assert [getattr(together, p) for p in parts] == [getattr(alone, p) for p in parts]
        assert "\x00" not in together.text_body + together.html_body
    assert "&lt;b&gt;Ana&lt;/b&gt;&amp;co" in rows[f"shared:{people[0].id}"].html_body


def test_emails_differing_in_printed_values_share_a_render_and_read_as_if_rendered_alone(
    mail_ctx, now, monkeypatch
):
    # A sweep's reminders of many sessions: one render per language, zone and the values
    # that are not printed (video or not, minutes, an empty place), each email then filled
    # in with its own time, title and place, escaped in HTML as the template escapes them.
    people = [
        create_user(name="<b>Ana</b>&co Ruiz", email="p0@example.org"),
        create_user(name="Bob O'Neil", email="p1@example.org", locale="es"),
        create_user(name="Zoë Ng", email="p2@example.org", timezone="America/Los_Angeles"),
    ]
    db.session.flush()
    printed = ("title", "when", "zone_name", "where", "sign_in_link")

    def context(i: int, *, where: str, video: bool = False) -> dict:
        return {
            "title": f'Family session with Dr. <i>{i}</i> & "Lee"',
            "when": f"Monday, {i} o'clock",
            "zone_name": "Eastern Time",
            "minutes": 50 + i % 2,
            "where": where,
            "video": video,
            "sign_in_link": f"https://familylink.test/login?a={i}&b=<c>",
        }

    contexts = [context(i, where=f"Room {i} <2>") for i in range(4)]
    contexts += [context(5, where=""), context(6, where="https://x.test/j?a&b", video=True)]
    renders = []
    render = mail._render
    monkeypatch.setattr(mail, "_render", lambda *a: renders.append(a) or render(*a))
    batch = [
        mail.Queued("reminder", person, f"shared:{i}:{person.id}", context=c, printed=printed)
        for i, c in enumerate(contexts)
        for person in people
    ]
    assert mail.queue_many(batch, now=now) == len(batch)
    # Shapes: (language and zone: 3) x (minutes 50 or 51, an empty place, video: 4).
    assert len(renders) == 3 * 3 * 4 < 3 * len(batch)  # subject, text and HTML per shape
    for queued in batch:
        mail.queue_email("reminder", to=queued.to, dedupe_key=f"alone:{queued.dedupe_key}",
                         now=now, context=dict(queued.context))  # fmt: skip
    rows = {row.dedupe_key: row for row in db.session.scalars(select(OutboxEmail))}
    parts = ("subject", "text_body", "html_body")
    for queued in batch:
        together, alone = rows[queued.dedupe_key], rows[f"alone:{queued.dedupe_key}"]
        assert [getattr(together, p) for p in parts] == [getattr(alone, p) for p in parts]
        assert "\x00" not in together.text_body + together.html_body
    html = rows[f"shared:0:{people[0].id}"].html_body
    assert "Dr. &lt;i&gt;0&lt;/i&gt; &amp; &#34;Lee&#34;" in html and "Room 0 &lt;2&gt;" in html


def test_a_printed_value_the_template_changes_is_rendered_email_by_email(mail_ctx, now):
    # A caller that wrongly says a value is only printed: the greeting takes its first word,
    # which breaks the marker, so each email is rendered alone, as it should read.
    people = [create_user(email=f"p{i}@example.org") for i in range(2)]
    db.session.flush()
    batch = [
        mail.Queued(
            "family_access_ended",
            person,
            f"ended:{person.id}",
            context={"recipient_name": name},
            printed=("recipient_name",),
        )
        for person, name in zip(people, ("Maria Whitfield", "Luis Ortega"), strict=True)
    ]
    assert mail.queue_many(batch, now=now) == 2
    bodies = [
        row.text_body for row in db.session.scalars(select(OutboxEmail).order_by(OutboxEmail.id))
    ]
    assert "Hello Maria," in bodies[0] and "Whitfield" not in bodies[0]
    assert "Hello Luis," in bodies[1] and "Ortega" not in bodies[1]


def test_the_sent_records_statements_are_compiled_once_not_per_email(mail_ctx, smtp_server, now):
    # Compiling an INSERT cost as much as sending: each record must reuse the cached one.
    from sqlalchemy.engine.interfaces import CacheStats

    _queue(3, now)
    hits = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        if "INSERT INTO audit_events" in statement or "UPDATE outbox_emails" in statement:
            hits.append(context.cache_hit)

    event.listen(db.engine, "after_cursor_execute", keep)
    try:
        assert mail.send_pending(now=now).sent == 3
    finally:
        event.remove(db.engine, "after_cursor_execute", keep)
    assert len(hits) >= 4 and CacheStats.NO_CACHE_KEY not in hits  # a claim, three records
    assert hits[-2:] == [CacheStats.CACHE_HIT] * 2


def test_a_body_that_holds_the_shared_boundary_gets_a_boundary_of_its_own(mail_ctx, now):
    _queue(2, now)
    items = delivery.claim_batch(now=now, limit=10, worker="w")
    items[1].text_body += f"\n--{delivery.BOUNDARY}\n"
    plain, tricky = (delivery.build_message(item, "Sender <s@example.org>") for item in items)
    assert plain.get_boundary() == delivery.BOUNDARY
    assert tricky.get_boundary() != delivery.BOUNDARY
    parsed = email.message_from_bytes(tricky.as_bytes(), policy=email.policy.default)
    assert parsed.get_body(("plain",)).get_content().endswith(f"--{delivery.BOUNDARY}\n")


def test_the_senders_own_headers_are_taken_as_made_and_user_data_still_parsed(mail_ctx, now):
    # Parsing the Date, Message-ID and X-FamilyLink-Id the sender has just made cost as much as
    # building the rest of the message; the subject and addresses still go through the parser.
    _queue(1, now)
    (item,) = delivery.claim_batch(now=now, limit=10, worker="w")
    message = delivery.build_message(item, "Sender <s@example.org>")
    for name in ("Date", "Message-ID", "X-FamilyLink-Id"):
        assert not isinstance(message[name], BaseHeader), name
    for name in ("Subject", "From", "To"):
        assert isinstance(message[name], BaseHeader), name
    assert copy.deepcopy(message).as_bytes() == message.as_bytes()
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert parsed["Message-ID"] == delivery.message_id("test:0")
    assert parsed["X-FamilyLink-Id"] == str(item.id) and parsed["Date"].datetime is not None


def test_each_message_is_written_once_and_handed_over_as_bytes(
    mail_ctx, smtp_server, now, monkeypatch
):
    # send_message would copy the message and write it out again inside the sending loop.
    def forbidden(*_, **__):
        raise AssertionError("send_message")

    monkeypatch.setattr(smtplib.SMTP, "send_message", forbidden)
    _queue(2, now)
    assert mail.send_pending(now=now).sent == 2
    assert [m["Subject"] for m in smtp_server.parsed()] == ["Reset your password"] * 2


def test_on_postgresql_a_sent_record_and_its_audit_row_are_one_statement_committing_itself(
    mail_ctx, smtp_server, now
):
    # Three round trips per email (UPDATE, INSERT, COMMIT) cost more than sending it.
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no UPDATE inside WITH; its records are in-process calls")
    _queue(3, now)
    settles = []

    def keep(conn, cursor, statement, *_):
        if "UPDATE outbox_emails" in statement and "claimed_by =" in statement:
            settles.append((statement, conn.connection.dbapi_connection.autocommit))

    event.listen(db.engine, "before_cursor_execute", keep)
    try:
        assert mail.send_pending(now=now).sent == 3
    finally:
        event.remove(db.engine, "before_cursor_execute", keep)
    assert len(settles) == 3
    for statement, autocommit in settles:
        assert "INSERT INTO audit_events" in statement and autocommit
    assert (
        db.session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "email.sent")
        )
        == 3
    )


def test_an_address_beyond_ascii_goes_with_smtputf8_when_the_server_offers_it(
    mail_ctx, smtp_server, now
):
    # Account addresses may hold any letter (email_validator allows SMTPUTF8), as may a
    # recipient's first name; the message is written in UTF-8 only for such an address.
    from aiosmtpd.controller import Controller

    for i, to in enumerate(["josé@example.org", "jose@example.org"]):
        mail.queue_email("password_reset", to=to, dedupe_key=f"utf8:{i}", now=now,
                         context={"link": "https://familylink.test/reset/é"})  # fmt: skip
    db.session.commit()
    assert mail.send_pending(now=now).sent == 2
    international, plain = smtp_server.messages
    assert "SMTPUTF8" in international.mail_options and "SMTPUTF8" not in plain.mail_options
    assert international.rcpt_tos == ["josé@example.org"]
    assert "To: josé@example.org\r\n".encode() in international.content
    assert plain.content.isascii()
    smtp_server.stop()
    smtp_server.controller = Controller(
        smtp_server.handler, hostname="127.0.0.1", port=smtp_server.port, enable_SMTPUTF8=False
    )
    smtp_server.controller.start()
    db.session.execute(update(OutboxEmail).values(status=OutboxStatus.PENDING))
    db.session.commit()
    # Refused before a word of it is sent, as a temporary failure: the server may offer it later.
    assert mail.send_pending(now=now + timedelta(hours=1)).retried == 1
    assert mail.send_pending(now=now + timedelta(hours=1)).sent == 1
    assert len(smtp_server.messages) == 3


def test_the_records_connection_goes_back_to_the_pool_as_it_came(mail_ctx, smtp_server, now):
    # On PostgreSQL the records commit statement by statement; the next user of that pooled
    # connection (a page's transaction) must not.
    _queue(2, now)
    back = []

    def checked_in(dbapi_connection, _record):
        back.append(getattr(dbapi_connection, "autocommit", False))

    event.listen(db.engine, "checkin", checked_in)
    try:
        assert mail.send_pending(now=now).sent == 2
    finally:
        event.remove(db.engine, "checkin", checked_in)
    assert back and not any(back)
    with db.engine.connect() as connection:
        assert connection.get_isolation_level() != "AUTOCOMMIT"


@pytest.mark.parametrize("emails", [1, 3])
def test_queuing_compiles_its_insert_once(mail_ctx, now, emails):
    # The outbox INSERT skips a dedupe key queued before (ON CONFLICT … DO NOTHING), a
    # dialect's own construct, which SQLAlchemy 2.0 cannot cache: each booking compiled it
    # again. Its second queuing (one email, or several: PostgreSQL's JSON document) must find
    # it compiled, and still skip the keys queued before.
    seen = []

    def note(conn, cursor, statement, params, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO OUTBOX_EMAILS"):
            seen.append(context._get_cache_stats())

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        for attempt in range(2):
            queued = _resets(
                [(f"person{i}@example.org", f"compiled:{attempt}:{i}") for i in range(emails)]
            )
            assert mail.queue_many(queued, now=now) == emails
        assert mail.queue_many(queued, now=now) == 0  # the same keys again: skipped
    finally:
        event.remove(db.engine, "before_cursor_execute", note)
    assert len(seen) == 3 and all(stats.startswith("cached since") for stats in seen[1:]), seen


def test_each_body_is_quoted_printable_encoded_once(mail_ctx, now, monkeypatch):
    # Left to choose, the standard library encodes a long body's first lines to compare
    # encodings and then the whole body again; the sender names the encoding it uses anyway.
    import email.quoprimime

    _queue(1, now)
    (item,) = delivery.claim_batch(now=now, limit=10, worker="w")
    item.text_body = "\n".join(f"Line {i} of a reminder, " + "long " * 20 for i in range(15))
    encoded = []
    body_encode = email.quoprimime.body_encode
    monkeypatch.setattr(
        email.quoprimime, "body_encode", lambda *a, **k: encoded.append(1) or body_encode(*a, **k)
    )
    message = delivery.build_message(item, "Sender <s@example.org>")
    assert len(encoded) == 2  # the text part and the HTML part, once each
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    for subtype, body in (("plain", item.text_body), ("html", item.html_body)):
        part = parsed.get_body((subtype,))
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
        assert part.get_content().replace("\r\n", "\n").rstrip("\n") == body.rstrip("\n")


@pytest.mark.parametrize("to", ["zoe@example.org", "zoé@example.org"])
def test_a_message_goes_as_the_standard_librarys_bytes_written_in_one_piece(
    mail_ctx, now, monkeypatch, to
):
    # Written line by line, the bytes generator encodes each line apart; the text generator's
    # one string, encoded once, is the same bytes (headers folded, bodies ASCII once encoded).
    import email.generator

    program_row().sender_name = "Séances en famille"
    calendar = mail.Attachment("s.ics", "text/calendar; method=REQUEST", b"BEGIN:VCALENDAR")
    context = {"link": "https://familylink.test/reset/é"}
    mail.queue_email(
        "password_reset", to=to, dedupe_key="bytes", now=now, context=context, attachment=calendar
    )
    db.session.commit()
    (item,) = delivery.claim_batch(now=now, limit=10, worker="w")
    written = []
    write = email.generator.BytesGenerator.write
    monkeypatch.setattr(
        email.generator.BytesGenerator, "write", lambda *a: written.append(1) or write(*a)
    )
    built, build = [], delivery.build_message
    monkeypatch.setattr(delivery, "build_message", lambda *a: built.append(build(*a)) or built[0])
    wire = delivery._build(item, "Séances en famille <no-reply@familylink.localhost>")
    assert written == []
    # The same message (the calendar's inner boundary is made up as it is first written).
    assert wire == built[0].as_bytes(policy=delivery._WIRE[not to.isascii()])


def test_a_failing_sweep_or_pass_does_not_stop_the_mail_worker(
    mail_app, smtp_server, now, monkeypatch, caplog
):
    """A deadlock or a lost connection is logged and tried again on the next pass; the
    other sweeps and the delivery still run."""
    swept = []

    def failing_sweep(at):
        swept.append(at)
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    mail_app.extensions["familylink_sweeps"].insert(0, failing_sweep)
    real_send, sends = mail.send_pending, []

    def send_pending(**kwargs):
        sends.append(kwargs)
        if len(sends) == 1:
            raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))
        return real_send(**kwargs)

    monkeypatch.setattr(mail, "send_pending", send_pending)
    monkeypatch.setattr(signal, "signal", lambda *args: None)  # the test process keeps its own
    monkeypatch.setattr(time, "sleep", lambda seconds: None)  # --interval is 1 s at least
    with mail_app.app_context():
        _queue(1, now)
    result = mail_app.test_cli_runner().invoke(
        args=["mail", "worker", "--passes", "2", "--interval", "1"]
    )
    assert result.exit_code == 0, result.output
    assert (len(swept), len(sends), len(smtp_server.messages)) == (2, 2, 1)
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    named = f"sweep {__name__}.{failing_sweep.__qualname__} failed; the next pass runs it again"
    assert logged.count(named) == 2
    assert logged.count("mail delivery failed; the next pass tries again") == 1
