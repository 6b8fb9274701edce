"""What the outbox keeps of an email once it is settled: once sent over SMTP or cancelled,
nothing of its message. Its links carry tokens the database otherwise keeps only as hashes
(a password reset, an invitation), and its text the times and places of sessions. A failed
email keeps its message for the admin's retry until it is too late to be useful (an
emailed link's end); the dev mailbox keeps everything to show."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import AccountToken, AuditEvent, OutboxEmail, OutboxStatus, Role
from familylink.services import accounts, booking, consent, mail, outbox_admin, tokens
from familylink.services.errors import NotFound
from familylink.services.mail import Attachment
from familylink.services.mail.delivery import claim_batch, deliver_batch
from tests import factories
from tests.booking_setup import create_clinic, family_seat


@pytest.fixture
def mail_ctx(mail_app):
    with mail_app.app_context():
        yield mail_app


@pytest.fixture
def issued(monkeypatch):
    """The raw value of every token issued during the test, as only its email carries it."""
    raws = []

    def issue_token(*args, **kwargs):
        raws.append(real(*args, **kwargs))
        return raws[-1]

    real = tokens.issue_token
    monkeypatch.setattr(tokens, "issue_token", issue_token)
    return raws


def _stored() -> str:
    """Every value in every table, as text."""
    return "\n".join(
        repr(tuple(row))
        for table in db.metadata.sorted_tables
        for row in db.session.execute(select(table))
    )


def _queue_one(now, key: str = "one", **fields) -> int:
    row = mail.queue_email(
        "password_reset",
        to="person@example.org",
        dedupe_key=key,
        now=now,
        context={"link": "https://familylink.test/reset/secret-part", "recipient": None},
        attachment=Attachment("invite.ics", "text/calendar", b"BEGIN:VCALENDAR\r\n"),
        **fields,
    )
    db.session.commit()
    return row.id


def _kept(row_id: int) -> tuple:
    db.session.expire_all()
    row = db.session.get(OutboxEmail, row_id)
    return row.status, row.subject, row.text_body, row.html_body, row.attachment_data


def _email_every_link(now) -> None:
    """One email of each kind that carries a token: a verification, a reset, staff and
    patient invitations, an email change and a family invitation."""
    admin = factories.create_user(Role.ADMIN)
    lee = factories.create_user(Role.THERAPIST, name="Dr. Grace Lee")
    jordan = factories.create_user(Role.PATIENT, name="Jordan Rivera", therapist=lee, mfa=False)
    new_member = factories.create_user(Role.FAMILY, verified=False)
    moving = factories.create_user(Role.FAMILY)
    accounts.send_verification(new_member, now=now)
    accounts.request_password_reset(lee.email, now=now)
    accounts.invite_therapist(admin, name="Dr. Sam Hill", email="hill@example.org", now=now)
    accounts.invite_user(
        role=Role.PATIENT, name="Alex Lake", email="alex@example.org", invited_by=lee,
        therapist=lee, now=now,
    )  # fmt: skip
    accounts.request_email_change(
        moving, password=factories.PASSWORD, new_email="moved@example.org", now=now
    )
    consent.sign_consent(jordan, factories.consent_details(), now=now)  # the family invitation
    db.session.commit()


def test_no_emailed_link_is_left_in_the_database_once_sent(mail_ctx, smtp_server, issued, now):
    _email_every_link(now)
    assert len(issued) == 6
    queued = _stored()
    assert all(raw in queued for raw in issued)  # the outbox holds each link until it is sent

    assert mail.send_pending(now=now).sent == 6
    received = "\n".join(
        message.get_body(("plain",)).get_content() for message in smtp_server.parsed()
    )
    stored = _stored()
    for raw in issued:
        assert raw in received
        assert raw not in stored
        # Nor a piece of it: a dedupe key once held a token's first twelve characters.
        assert all(raw[start : start + 10] not in stored for start in range(len(raw) - 9))


def test_a_sent_email_keeps_its_subject_and_nothing_of_its_message(mail_ctx, smtp_server, now):
    row_id = _queue_one(now)
    mail.send_pending(now=now)
    (message,) = smtp_server.parsed()
    assert "secret-part" in message.get_body(("plain",)).get_content()
    assert [part.get_filename() for part in message.iter_attachments()] == ["invite.ics"]
    assert _kept(row_id) == (OutboxStatus.SENT, "Reset your password", "", "", None)


def test_a_failed_email_keeps_its_message_for_the_admins_retry(mail_ctx, smtp_server, now):
    smtp_server.handler.replies.append("550 No such mailbox")
    row_id = _queue_one(now)
    assert mail.send_pending(now=now).failed == 1
    status, _subject, text, html, attachment = _kept(row_id)
    assert status == OutboxStatus.FAILED
    assert "secret-part" in text and "secret-part" in html and attachment


def test_an_email_cancelled_at_send_time_keeps_nothing_of_its_message(mail_ctx, smtp_server, now):
    row_id = _queue_one(now, not_after=now + timedelta(minutes=5))
    assert mail.send_pending(now=now + timedelta(minutes=6)).cancelled == 1
    assert smtp_server.messages == []
    status, _subject, *message = _kept(row_id)
    assert status == OutboxStatus.CANCELLED and message == ["", "", None]


def test_emails_cancelled_when_access_ends_keep_nothing_of_their_message(mail_ctx, now):
    patient = factories.create_user(Role.PATIENT, mfa=False)
    row_id = _queue_one(now, patient_id=patient.id, required_scope="scheduling")
    row = db.session.get(OutboxEmail, row_id)
    assert mail.cancel_pending(patient_id=patient.id, to_address=row.to_address) == 1
    db.session.commit()
    status, _subject, *message = _kept(row_id)
    assert status == OutboxStatus.CANCELLED and message == ["", "", None]


def test_the_dev_mailbox_keeps_the_messages_it_shows(app_ctx, now):
    sent_id = _queue_one(now, key="sent")
    patient = factories.create_user(Role.PATIENT, mfa=False)
    cancelled_id = _queue_one(now, key="cancelled", patient_id=patient.id)
    mail.cancel_pending(patient_id=patient.id, to_address="person@example.org")
    expired_id = _queue_one(now, key="expired", not_after=now - timedelta(minutes=1))
    assert mail.expire_unsent(now) == 1
    db.session.commit()
    assert mail.send_pending(now=now).sent == 1
    kept = (
        (sent_id, OutboxStatus.SENT),
        (cancelled_id, OutboxStatus.CANCELLED),
        (expired_id, OutboxStatus.CANCELLED),
    )
    for row_id, status in kept:
        kept_status, _subject, text, html, attachment = _kept(row_id)
        assert kept_status == status and "secret-part" in text and "secret-part" in html
        assert attachment == b"BEGIN:VCALENDAR\r\n"


def test_an_emailed_link_is_useful_until_its_token_ends(mail_ctx, issued, now):
    _email_every_link(now)
    ends = [
        db.session.scalar(
            select(AccountToken.expires_at).where(AccountToken.token_hash == tokens.digest(raw))
        )
        for raw in issued
    ]
    rows = db.session.scalars(select(OutboxEmail)).all()
    carrying = [next(row for row in rows if raw in row.text_body) for raw in issued]
    assert [row.not_after for row in carrying] == ends
    assert len(set(ends)) == 4  # an hour, two days, a week, two weeks: each kind its own


def test_a_failed_email_keeps_its_link_no_longer_than_the_link_opens(
    mail_ctx, smtp_server, issued, now
):
    lee = factories.create_user(Role.THERAPIST)
    accounts.request_password_reset(lee.email, now=now)
    db.session.commit()
    smtp_server.handler.replies.append("550 No such mailbox")
    assert mail.send_pending(now=now).failed == 1
    (row_id,) = db.session.scalars(select(OutboxEmail.id)).all()
    (raw,) = issued
    link_end = tokens.expires_at("reset", now)

    assert mail.expire_unsent(link_end - timedelta(seconds=1)) == 0
    db.session.commit()
    status, _subject, text, *_ = _kept(row_id)
    assert status == OutboxStatus.FAILED and raw in text  # the admin may still retry it

    assert mail.expire_unsent(link_end) == 1
    db.session.commit()
    status, _subject, *message = _kept(row_id)
    assert status == OutboxStatus.CANCELLED and message == ["", "", None]
    assert db.session.get(OutboxEmail, row_id).last_error == mail.TOO_LATE
    assert raw not in _stored()
    counted = db.session.scalars(
        select(AuditEvent.detail).where(AuditEvent.action == "email.expired")
    ).all()
    assert counted == [{"emails": 1}]
    with pytest.raises(NotFound):
        outbox_admin.retry_failed(row_id, actor=lee, now=link_end)


def test_the_mail_worker_expires_what_is_too_late(mail_app, smtp_server, now):
    with mail_app.app_context():
        smtp_server.handler.replies.append("550 No such mailbox")
        row_id = _queue_one(now, not_after=now + timedelta(hours=1))
        assert mail.send_pending(now=now).failed == 1
    later = (now + timedelta(hours=2)).isoformat()
    result = mail_app.test_cli_runner().invoke(args=["mail", "send", "--now", later])
    assert result.exit_code == 0, result.output
    with mail_app.app_context():
        status, _subject, *message = _kept(row_id)
        assert status == OutboxStatus.CANCELLED and message == ["", "", None]


def test_expiry_leaves_an_email_a_sender_is_sending(mail_ctx, now):
    row_id = _queue_one(now, not_after=now + timedelta(seconds=30))
    (claimed,) = claim_batch(now=now, limit=10, worker="sending")
    lease_end = claimed.locked_until
    assert lease_end > now + timedelta(seconds=30)
    # The sender holding it decides (it cancels it itself when too late): no sweep meanwhile.
    assert mail.expire_unsent(now + timedelta(seconds=30)) == 0
    db.session.commit()
    assert _kept(row_id)[0] == OutboxStatus.PENDING
    # A sender that died: once its lease ends the row is the sweep's.
    assert mail.expire_unsent(lease_end + timedelta(seconds=1)) == 1
    db.session.commit()
    assert _kept(row_id)[0] == OutboxStatus.CANCELLED


def _everyone_consents(pairs, scope, *, now):
    return set(pairs)


@pytest.mark.parametrize("reply", ["550 No such mailbox", "451 Try again later"])
def test_an_email_cancelled_while_a_sender_holds_it_stays_cancelled(
    mail_ctx, smtp_server, now, reply
):
    """Access can end while a sender holds the email (cancelling does not wait for its
    lease). The sender's failure must not turn the cancelled, emptied row back into one the
    admin could retry (it would send an empty message) nor replace why it was cancelled."""
    admin = factories.create_user(Role.ADMIN)
    patient = factories.create_user(Role.PATIENT, mfa=False)
    row_id = _queue_one(now, patient_id=patient.id, required_scope="scheduling")
    claimed = claim_batch(now=now, limit=10, worker="sending")
    ended = mail.cancel_pending(
        patient_id=patient.id, to_address="person@example.org", reason="access ended"
    )
    assert ended == 1
    db.session.commit()
    smtp_server.handler.replies.append(reply)
    report = deliver_batch(claimed, now=now, consent_check=_everyone_consents)

    assert (report.failed, report.retried) == (0, 0)
    status, _subject, *message = _kept(row_id)
    assert status == OutboxStatus.CANCELLED and message == ["", "", None]
    assert db.session.get(OutboxEmail, row_id).last_error == "access ended"
    with pytest.raises(NotFound):
        outbox_admin.retry_failed(row_id, actor=admin, now=now)


def test_a_sent_record_stands_over_a_cancellation_made_while_sending(mail_ctx, smtp_server, now):
    """The server took the email: that is what the outbox and the audit log must say."""
    patient = factories.create_user(Role.PATIENT, mfa=False)
    row_id = _queue_one(now, patient_id=patient.id, required_scope="scheduling")
    claimed = claim_batch(now=now, limit=10, worker="sending")
    mail.cancel_pending(patient_id=patient.id, to_address="person@example.org")
    db.session.commit()
    assert deliver_batch(claimed, now=now, consent_check=_everyone_consents).sent == 1
    assert len(smtp_server.messages) == 1
    assert _kept(row_id)[0] == OutboxStatus.SENT
    sent = db.session.scalars(
        select(AuditEvent.object_id).where(AuditEvent.action == "email.sent")
    ).all()
    assert sent == [row_id]


def test_a_retry_leaves_an_email_cancelled_since_the_admin_saw_it_failed(
    mail_ctx, smtp_server, now
):
    admin = factories.create_user(Role.ADMIN)
    smtp_server.handler.replies.append("550 No such mailbox")
    row_id = _queue_one(now, not_after=now + timedelta(hours=1))
    assert mail.send_pending(now=now).failed == 1
    assert _kept(row_id)[0] == OutboxStatus.FAILED
    seen = db.session.get(OutboxEmail, row_id)  # the admin's request has read it, failed
    with db.engine.begin() as worker:  # the worker's sweep, on its own connection
        mail_expired = worker.execute(
            OutboxEmail.__table__.update()
            .where(OutboxEmail.id == row_id)
            .values(status=OutboxStatus.CANCELLED, last_error=mail.TOO_LATE, text_body="")
        )
        assert mail_expired.rowcount == 1
    with pytest.raises(NotFound):
        outbox_admin.retry_failed(row_id, actor=admin, now=now)
    db.session.rollback()
    assert seen.status == OutboxStatus.CANCELLED
    assert _kept(row_id)[:3] == (OutboxStatus.CANCELLED, "Reset your password", "")
    retried = select(AuditEvent).where(AuditEvent.action == "email.retried")
    assert db.session.scalars(retried).all() == []


def test_a_failed_booking_email_keeps_its_session_no_longer_than_the_session(
    mail_ctx, smtp_server, now
):
    clinic = create_clinic()
    seat = family_seat(clinic, now + timedelta(hours=3), booked_at=now - timedelta(days=2))
    ends_at = seat.appointment.ends_at
    booking.cancel_seat(actor=clinic.family, seat_id=seat.id, now=now)  # late: the therapist too
    db.session.commit()
    rows = db.session.scalars(select(OutboxEmail).order_by(OutboxEmail.kind)).all()
    assert [(row.kind, row.not_after) for row in rows] == [
        ("booking_cancelled", ends_at),
        ("late_cancellation", ends_at),
    ]
    smtp_server.handler.replies.extend(["550 No such mailbox"] * 2)
    assert mail.send_pending(now=now).failed == 2

    assert mail.expire_unsent(ends_at - timedelta(seconds=1)) == 0
    assert mail.expire_unsent(ends_at) == 2
    db.session.commit()
    for row in rows:
        status, _subject, *message = _kept(row.id)
        assert status == OutboxStatus.CANCELLED and message == ["", "", None]
