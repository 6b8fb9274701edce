"""Email: queue into the outbox inside the caller's transaction; deliver later, reliably.

Delivery guarantee: every row is delivered at least once, and exactly once unless the
process dies between the SMTP server accepting a message and the commit that marks it sent.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hashlib
import hmac
import json
import logging
import random
import re
import smtplib
import ssl
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.utils import formataddr, formatdate

import psycopg
from flask import current_app, has_request_context, render_template, url_for
from flask_mail import Connection
from psycopg import pq
from sqlalchemy import func, or_, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError

from familylink.extensions import db
from familylink.models import OutboxEmail, OutboxStatus, User
from familylink.services import access, audit
from familylink.services.errors import NotFound
from familylink.services.program import get_program

log = logging.getLogger(__name__)

# Names the outbox row, so a duplicate delivery can be recognised; nothing else.
OUTBOX_ID_HEADER = "X-FamilyLink-Id"

# Subjects are neutral: they never name the kind of care, a diagnosis or a substance.
SUBJECTS = {
    "verify_email": "Confirm your email address",
    "already_registered": "About your sign-up",
    "password_reset": "Reset your password",
    "staff_invitation": "You're invited to set up your account",
    "patient_invitation": "You're invited to set up your account",
    "module_assigned": "New reading from your care team",
    "family_invitation": "You're invited to join your family's sessions",
    "family_access_ended": "Your access has ended",
    "family_access_ended_therapist": "A family contact's access has ended",
    "consent_expiring": "A sharing permission ends soon",
    "booking_confirmed": "Your appointment is confirmed",
    "booking_rescheduled": "Your appointment has moved",
    "booking_cancelled": "Your appointment is cancelled",
    "late_cancellation": "A late cancellation",
    "waitlist_offer": "A place has opened for you",
    "email_change_verify": "Confirm your new email address",
    "email_changed_notice": "Your sign-in email address was changed",
    "password_changed_notice": "Your password was changed",
    "reminder": "Your appointment reminder",
}


@dataclass
class Attachment:
    filename: str
    content_type: str
    data: bytes


def external_url(endpoint: str, **values) -> str:
    """An absolute link for an email, built from SERVER_NAME when it is set."""
    config = current_app.config
    if has_request_context() and not config.get("SERVER_NAME"):
        return url_for(endpoint, _external=True, **values)
    base = f"{config['PREFERRED_URL_SCHEME']}://{config.get('SERVER_NAME') or '127.0.0.1:5000'}"
    with current_app.test_request_context("/", base_url=base):
        return url_for(endpoint, _external=True, **values)


def queue_email(
    kind: str,
    *,
    to: User | str,
    dedupe_key: str,
    now: datetime,
    context: dict | None = None,
    patient_id: int | None = None,
    required_scope: str | None = None,
    attachment: Attachment | None = None,
    not_after: datetime | None = None,
    send_at: datetime | None = None,
    actor: User | None = None,
) -> OutboxEmail | None:
    """Render an email and add it to the outbox; return None when that key was queued before.

    `patient_id` + `required_scope` mean the recipient must still hold that consent scope at
    send time, or the email is cancelled instead of sent.
    """
    existing = db.session.scalar(select(OutboxEmail).where(OutboxEmail.dedupe_key == dedupe_key))
    if existing is not None:
        return None
    address = to.email if isinstance(to, User) else to.lower()
    program = get_program()
    zone = to.timezone if isinstance(to, User) else program.timezone
    ctx = {"program": program, "recipient": to if isinstance(to, User) else None, "zone": zone}
    ctx.update(context or {})
    subject = SUBJECTS[kind]
    row = OutboxEmail(
        kind=kind,
        dedupe_key=dedupe_key,
        to_address=address,
        to_user_id=to.id if isinstance(to, User) else None,
        patient_id=patient_id,
        required_scope=required_scope,
        subject=subject,
        text_body=render_template(f"email/{kind}.txt", subject=subject, **ctx),
        html_body=render_template(f"email/{kind}.html", subject=subject, **ctx),
        attachment_name=attachment.filename if attachment else None,
        attachment_type=attachment.content_type if attachment else None,
        attachment_data=attachment.data if attachment else None,
        created_at=now,
        next_attempt_at=send_at or now,
        not_after=not_after,
    )
    # A savepoint, so losing a dedupe race to another transaction leaves ours usable.
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:
        return None
    audit.record(
        "email.queued",
        actor=actor,
        obj=row,
        patient_id=patient_id,
        recipient_id=row.to_user_id,
        detail={"kind": kind},
        now=now,
    )
    return row


#: Rows that may still be sent: queued ones, and failed ones an admin may put back in the queue.
UNSENT = (OutboxStatus.PENDING, OutboxStatus.FAILED)


def cancel_pending(*, now: datetime, to_user_id: int, patient_id: int) -> int:
    """Cancel every unsent email (queued, or failed and waiting for an admin's retry) to
    that person about that patient; return how many."""
    result = db.session.execute(
        update(OutboxEmail)
        .where(
            OutboxEmail.status.in_(UNSENT),
            OutboxEmail.to_user_id == to_user_id,
            OutboxEmail.patient_id == patient_id,
        )
        .values(status=OutboxStatus.CANCELLED, last_error="consent ended", locked_until=None)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def cancel_pending_to_address(*, now: datetime, to_address: str, patient_id: int) -> int:
    """Cancel unsent emails about that patient to an address with no account (invitations),
    failed ones included."""
    result = db.session.execute(
        update(OutboxEmail)
        .where(
            OutboxEmail.status.in_(UNSENT),
            OutboxEmail.to_address == to_address.lower(),
            OutboxEmail.patient_id == patient_id,
        )
        .values(status=OutboxStatus.CANCELLED, last_error="consent ended", locked_until=None)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


class _DataGate:
    """smtplib's DATA command with two hooks: `before_data` runs just before it, and
    `while_accepting` once the message has gone out, before the reply ("accepted") is read.
    The server is reading and deciding then, so work done there (building the next message)
    costs no time. `while_accepting` must not raise.
    """

    before_data = None
    while_accepting = None

    def data(self, msg: bytes):
        if self.before_data is not None:
            self.before_data()
        self.putcmd("data")
        code, reply = self.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        self.send(_dot_stuffed(msg))
        if self.while_accepting is not None:
            self.while_accepting()
        return self.getreply()


def _dot_stuffed(data: bytes) -> bytes:
    """The message as DATA carries it: a leading "." doubled, ending in CRLF "." CRLF."""
    data = _LEADING_DOT.sub(b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


_LEADING_DOT = re.compile(rb"(?m)^\.")


class _GatedSMTP(_DataGate, smtplib.SMTP):
    pass


class _GatedSMTP_SSL(_DataGate, smtplib.SMTP_SSL):
    pass


class VerifiedConnection(Connection):
    """Flask-Mail's connection, but TLS checks the server's certificate and host name.

    Flask-Mail calls starttls() with no context, which in Python 3.11 accepts any
    certificate; a man in the middle could then read every email.
    """

    def configure_host(self):
        timeout = current_app.config.get("MAIL_TIMEOUT", 10)
        # Built only when used: loading the CA store costs a tenth of a second.
        context = ssl.create_default_context() if self.mail.use_ssl or self.mail.use_tls else None
        if self.mail.use_ssl:
            host = _GatedSMTP_SSL(
                self.mail.server, self.mail.port, timeout=timeout, context=context
            )
        else:
            host = _GatedSMTP(self.mail.server, self.mail.port, timeout=timeout)
        try:
            if self.mail.use_tls:
                host.starttls(context=context)
            if self.mail.username and self.mail.password:
                host.login(self.mail.username, self.mail.password)
        except BaseException:
            host.close()
            raise
        return host


def claim_batch(*, now: datetime, limit: int, worker: str) -> list[LeasedEmail]:
    """Lease up to `limit` due rows to this worker, commit the lease, and return them.

    On PostgreSQL rows locked by another worker's claim are skipped (SKIP LOCKED); on SQLite
    the single UPDATE is atomic. Either way a row is leased to one worker at a time, and a
    crashed worker's rows come back when the lease runs out. On SQLite a write lock held too
    long by another process (past the busy timeout) gives an empty batch, not a crash: the
    rows stay due for the next pass.

    The rows come back from the claiming UPDATE itself (RETURNING), as plain values: one
    statement, and nothing in the ORM session that a later write elsewhere could make stale.
    """
    lease = timedelta(seconds=current_app.config["MAIL_LEASE_SECONDS"])
    due = (
        select(OutboxEmail.id)
        .where(
            OutboxEmail.status == OutboxStatus.PENDING,
            OutboxEmail.next_attempt_at <= now,
            or_(OutboxEmail.locked_until.is_(None), OutboxEmail.locked_until < now),
        )
        .order_by(OutboxEmail.next_attempt_at, OutboxEmail.id)
        .limit(limit)
    )
    sqlite = db.engine.dialect.name == "sqlite"
    if not sqlite:
        due = due.with_for_update(skip_locked=True)
    token = f"{worker}:{uuid.uuid4().hex[:8]}"
    try:
        # A Core statement on the table, not an ORM update: nothing in the session to sync.
        outbox = OutboxEmail.__table__
        rows = db.session.execute(
            update(outbox)
            .where(outbox.c.id.in_(due.scalar_subquery()))
            .values(locked_until=now + lease, claimed_by=token)
            .returning(*LeasedEmail.columns())
        ).all()
        db.session.commit()
    except OperationalError as error:
        db.session.rollback()
        if sqlite and "locked" in str(error):
            log.warning("outbox busy (another sender holds the write lock); trying next pass")
            return []
        raise
    return sorted((LeasedEmail.of(row) for row in rows), key=lambda item: item.id)


def _backoff(attempts: int) -> timedelta:
    """Exponential backoff with jitter: about 30 s, 1 min, 2 min … capped at 6 hours."""
    base = min(30 * 2 ** (attempts - 1), 6 * 3600)
    return timedelta(seconds=base * random.uniform(0.8, 1.2))


def _is_permanent(error: Exception) -> bool:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        return all(code >= 500 for code in codes)
    code = getattr(error, "smtp_code", None)
    return code is not None and code >= 500


def _connection_still_usable(error: Exception) -> bool:
    """After a refusal of one message smtplib resets the session; 421 and I/O errors end it."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return True
    code = getattr(error, "smtp_code", None)
    return isinstance(error, smtplib.SMTPResponseException) and code not in (None, -1, 421)


def message_id(dedupe_key: str) -> str:
    """A Message-ID that is the same on every attempt, so duplicates can be recognised.

    Derived from the dedupe key with a keyed hash: the key holds record ids (and for some
    kinds part of a token), which must not show in a header.
    """
    secret = str(current_app.config["SECRET_KEY"]).encode()
    digest = hmac.new(secret, dedupe_key.encode(), hashlib.sha256).hexdigest()[:32]
    domain = current_app.config["MAIL_DEFAULT_SENDER"].rpartition("@")[2] or "familylink"
    return f"<{digest}@{domain}>"


@dataclass
class LeasedEmail:
    """An outbox row leased to this worker, as the sender needs it: values read once."""

    id: int
    kind: str
    claimed_by: str | None
    to_address: str
    to_user_id: int | None
    patient_id: int | None
    required_scope: str | None
    not_after: datetime | None
    attempts: int
    dedupe_key: str
    subject: str
    text_body: str
    html_body: str
    attachment: Attachment | None

    @classmethod
    def columns(cls) -> list:
        """The outbox columns `of` reads."""
        return [OutboxEmail.__table__.c[name] for name in _LEASED_COLUMNS]

    @classmethod
    def of(cls, row) -> LeasedEmail:
        """From an OutboxEmail, or a result row holding `columns()`."""
        attachment = None
        if row.attachment_data:
            attachment = Attachment(row.attachment_name, row.attachment_type, row.attachment_data)
        return cls(**{name: getattr(row, name) for name in _LEASED_VALUES}, attachment=attachment)


# The fields copied as they are; the attachment is built from its three columns.
_LEASED_VALUES = [f.name for f in fields(LeasedEmail) if f.name != "attachment"]
_LEASED_COLUMNS = [*_LEASED_VALUES, "attachment_name", "attachment_type", "attachment_data"]


def _header(value: str) -> str:
    """A header value, refused if it could smuggle in another header."""
    if "\r" in value or "\n" in value:
        raise ValueError("line break in an email header")
    return value


def _qp(text: str) -> bytes:
    """Quoted-printable UTF-8 with CRLF line ends: short lines (SMTP refuses lines over 998
    characters, and rendered HTML has long ones), plain text still readable raw."""
    return binascii.b2a_qp(text.replace("\r\n", "\n").encode("utf-8")).replace(b"\n", b"\r\n")


def _base64(data: bytes) -> bytes:
    """Base64 in lines of 76 characters with CRLF ends. Used for the HTML part: encoding it
    quoted-printable was the costliest step of building a message, and nobody reads HTML raw."""
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


@functools.lru_cache(maxsize=16)
def _from_header(sender: tuple[str, str]) -> str:
    return formataddr((_header(sender[0]), _header(sender[1])), "utf-8")


def message_bytes(item: LeasedEmail, sender: tuple[str, str], *, date: float) -> bytes:
    """The message as sent: text and HTML alternatives, and the attachment if any.

    Written out directly (headers, quoted-printable text, base64 HTML and attachment) instead of
    through Flask-Mail's Message and the email package's generator, which cost more than
    the SMTP exchange itself; the tests parse what arrives with the email package.
    Headers identify the outbox row only: no names, no kind of email, no patient.
    """
    boundary = f"=_fl_{uuid.uuid4().hex}"
    subject = _header(item.subject)
    if not subject.isascii():
        subject = Header(subject, "utf-8").encode()
    headers = [
        "MIME-Version: 1.0",
        f"Subject: {subject}",
        f"From: {_from_header(sender)}",
        f"To: {_header(item.to_address)}",
        f"Date: {formatdate(date, usegmt=True)}",
        f"Message-ID: {message_id(item.dedupe_key)}",
        f"{OUTBOX_ID_HEADER}: {item.id}",
    ]
    alternative = b"".join(
        [
            f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n".encode(),
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n",
            _qp(item.text_body),
            f"\r\n--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n".encode(),
            b"Content-Transfer-Encoding: base64\r\n\r\n",
            _base64(item.html_body.encode("utf-8")),
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
    if item.attachment is None:
        headers.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
        return "\r\n".join(headers).encode() + b"\r\n\r\n" + alternative
    outer = f"=_fl_{uuid.uuid4().hex}"
    attachment = item.attachment
    filename = _header(attachment.filename).replace('"', "")
    headers.append(f'Content-Type: multipart/mixed; boundary="{outer}"')
    return b"".join(
        [
            "\r\n".join(headers).encode(),
            f'\r\n\r\n--{outer}\r\nContent-Type: multipart/alternative; boundary="{boundary}"'
            "\r\n\r\n".encode(),
            alternative,
            f"\r\n--{outer}\r\nContent-Type: {_header(attachment.content_type)}\r\n".encode(),
            b"Content-Transfer-Encoding: base64\r\n",
            f'Content-Disposition: attachment; filename="{filename}"\r\n\r\n'.encode(),
            _base64(attachment.data),
            f"\r\n--{outer}--\r\n".encode(),
        ]
    )


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    cancelled: int = 0

    def add(self, other: DeliveryReport) -> None:
        for name in ("sent", "retried", "failed", "cancelled"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def __str__(self) -> str:
        return (
            f"sent {self.sent}, will retry {self.retried}, failed {self.failed}, "
            f"cancelled {self.cancelled}"
        )


def _still_wanted(item: LeasedEmail, now: datetime, allowed: set | None = None) -> str | None:
    """Why a leased row must not be sent any more, or None when it may go.

    `allowed` is the batch's consent answers from `_consents_for` (one query per batch);
    without it the consent is looked up for this row alone.
    """
    if item.not_after is not None and item.not_after <= now:
        return "too late to be useful"
    if item.patient_id is not None and item.to_user_id is not None:
        if allowed is not None:
            ok = (item.to_user_id, item.patient_id, item.required_scope) in allowed
        else:
            ok = access.may_disclose(
                item.to_user_id, item.patient_id, item.required_scope, now=now, audit_access=False
            )
        if not ok:
            return "consent ended"
    return None


def _consents_for(items: list[LeasedEmail], now: datetime) -> set[tuple[int, int, str | None]]:
    """(recipient, patient, scope) of the batch's rows whose consent allows them now."""
    wanted: dict[str | None, set[tuple[int, int]]] = {}
    for item in items:
        if item.patient_id is not None and item.to_user_id is not None:
            wanted.setdefault(item.required_scope, set()).add((item.to_user_id, item.patient_id))
    allowed = set()
    for scope, pairs in wanted.items():
        for family_id, patient_id in access.pairs_with_scope(pairs, scope, now=now):
            allowed.add((family_id, patient_id, scope))
    return allowed


def _settle(item: LeasedEmail, **values) -> bool:
    """Write an outcome to the row, only while this worker's claim on it stands.

    On PostgreSQL the outcome's commit does not wait for the disk (synchronous_commit off,
    for this transaction only): if this process dies after the commit returns, the outcome
    stands; only a crash of the database server itself within a fraction of a second could
    forget it, and then the email is sent again, never lost. This is what lets the sender
    commit every message on its own at close to the speed of plain SMTP.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SET LOCAL synchronous_commit TO OFF"))
    result = db.session.execute(
        update(OutboxEmail)
        .where(OutboxEmail.id == item.id, OutboxEmail.claimed_by == item.claimed_by)
        .values(locked_until=None, **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 0:
        log.warning("outbox row %s was claimed by another sender meanwhile", item.id)
        return False
    return True


class SmtpLink:
    """One SMTP connection, opened when first needed and kept across batches of a pass."""

    def __init__(self):
        self.connection: Connection | None = None
        self._marks: _SentMarks | _PostgresSentMarks | None = None
        self._prepared: tuple[int, bytes] | None = None  # (outbox id, message) built ahead

    @property
    def marks(self) -> _SentMarks | _PostgresSentMarks:
        """Where this pass records sent messages (kept across batches, like the connection)."""
        if self._marks is None:
            self._marks = _open_sent_marks()
        return self._marks

    def send(
        self,
        item: LeasedEmail,
        sender: tuple[str, str],
        before_data=None,
        next_item: LeasedEmail | None = None,
    ) -> None:
        """Send one message. `before_data` runs just before DATA; `next_item`'s message is
        built while the server decides on this one, ready for the next call."""
        if self.connection is None:
            self.connection = VerifiedConnection(current_app.extensions["mail"]).__enter__()
        prepared, self._prepared = self._prepared, None
        if prepared is not None and prepared[0] == item.id:
            data = prepared[1]
        else:
            data = message_bytes(item, sender, date=time.time())
        host = self.connection.host
        if host is None:  # Flask-Mail suppresses sending (MAIL_SUPPRESS_SEND)
            if before_data is not None:
                before_data()
            return
        host.before_data = before_data
        host.while_accepting = None
        if next_item is not None:
            host.while_accepting = functools.partial(self._prepare, next_item, sender)
        host.sendmail(sender[1], [_header(item.to_address)], data)

    def _prepare(self, item: LeasedEmail, sender: tuple[str, str]) -> None:
        # A message that cannot be built is left for its own send() to fail on.
        with contextlib.suppress(Exception):
            self._prepared = (item.id, message_bytes(item, sender, date=time.time()))

    def close(self) -> None:
        try:
            if self._marks is not None:
                self._marks.close()
        finally:
            self._marks = None
            _close(self.connection)
            self.connection = None


class _MarkFailed(Exception):
    """Recording a sent message failed: a database problem, not this message's fault."""


def _open_sent_marks() -> _SentMarks | _PostgresSentMarks:
    """Where a pass records sent messages: its own database connection, on either database.

    The record of message n is written while message n+1's MAIL and RCPT commands go out,
    and is waited for before n+1's DATA: the database work overlaps the wait for the SMTP
    server's replies, yet no more than one accepted message is ever unrecorded (the
    guarantee in the README). Each record is fixed SQL on the driver beneath SQLAlchemy:
    this runs once per message, and SQLAlchemy's work per statement cost more than the
    statement. tests/unit/test_mailer.py checks the row and its audit event on both.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        return _PostgresSentMarks()
    return _SentMarks()


class _SentMarks:
    """SQLite: each record is written on a second thread (sqlite3 lets go of the
    interpreter lock while it works)."""

    def __init__(self):
        self.sent = 0
        self.pending: Future | None = None
        self.connection = db.engine.connect()
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-marks")

    def add(self, item: LeasedEmail, *, attempts: int, now: datetime) -> None:
        self.wait()
        self.pending = self.pool.submit(
            _mark_sent, item, attempts=attempts, now=now, connection=self.connection
        )

    def wait(self) -> None:
        """Block until the last record is written; raise _MarkFailed if it could not be."""
        if self.pending is None:
            return
        future, self.pending = self.pending, None
        try:
            self.sent += future.result()
        except Exception as error:
            raise _MarkFailed() from error

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self.pool.shutdown()
            self.connection.close()


class _PostgresSentMarks:
    """PostgreSQL: each record is sent with libpq's asynchronous call and its answer read
    in wait(). No thread: a thread's share of the interpreter lock slowed the SMTP side.

    One statement, prepared once per pass (parsing and planning it cost as much as running
    it), in autocommit mode: one round trip per message, with synchronous_commit off for
    that transaction only (see _settle for what that does and does not risk).
    """

    def __init__(self):
        self.sent = 0
        self.pending: LeasedEmail | None = None
        self.connection = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self.pgconn = self.connection.connection.dbapi_connection.pgconn
        # Unique, so a statement left behind on a pooled connection can never clash.
        self.statement = f"familylink_mark_sent_{uuid.uuid4().hex}".encode()
        try:
            self._check(self.pgconn.prepare(self.statement, _PG_MARK_SENT))
        except BaseException:
            self.connection.close()
            raise

    def add(self, item: LeasedEmail, *, attempts: int, now: datetime) -> None:
        self.wait()
        at = now.astimezone(UTC).replace(tzinfo=None)  # stored as naive UTC (UTCDateTime)
        values = [
            attempts,
            at.isoformat(" "),
            item.id,
            item.claimed_by,
            item.patient_id,
            item.to_user_id,
            json.dumps({"kind": item.kind}),
        ]
        encoded = [None if value is None else str(value).encode() for value in values]
        try:
            self.pgconn.send_query_prepared(self.statement, encoded)
        except Exception as error:
            raise _MarkFailed() from error
        self.pending = item

    def wait(self) -> None:
        """Read the last record's answer; raise _MarkFailed if it was not written."""
        if self.pending is None:
            return
        item, self.pending = self.pending, None
        try:
            results = []
            while (result := self.pgconn.get_result()) is not None:
                results.append(result)
            for result in results:
                self._check(result)
            recorded = int(results[-1].get_value(0, 0)) > 0
        except Exception as error:
            raise _MarkFailed() from error
        if not recorded:
            log.warning("outbox row %s was claimed by another sender meanwhile", item.id)
        self.sent += recorded

    @staticmethod
    def _check(result) -> None:
        if result.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
            raise psycopg.OperationalError(result.error_message.decode(errors="replace"))

    def close(self) -> None:
        try:
            self.wait()
        finally:
            with contextlib.suppress(Exception):
                self.pgconn.exec_(b"DEALLOCATE " + self.statement)
            self.connection.close()


# Parameters as text, each cast to its column's type: $1 attempts, $2 the time (naive
# UTC), $3 the outbox id, $4 the claim token, $5 patient, $6 recipient, $7 detail (JSON).
_PG_MARK_SENT = b"""
WITH done AS (
    UPDATE outbox_emails
    SET status = 'sent', attempts = CAST($1 AS integer), sent_at = CAST($2 AS timestamp),
        last_error = NULL, locked_until = NULL
    WHERE id = CAST($3 AS integer) AND claimed_by = $4
      AND set_config('synchronous_commit', 'off', true) IS NOT NULL
    RETURNING id
), logged AS (
    INSERT INTO audit_events
        (at, action, object_type, object_id, patient_id, recipient_id, outcome, detail)
    SELECT CAST($2 AS timestamp), 'email.sent', 'outbox_emails', id, CAST($5 AS integer),
        CAST($6 AS integer), 'success', CAST($7 AS json)
    FROM done
)
SELECT count(*) FROM done
"""


def _mark_sent(item: LeasedEmail, *, attempts: int, now: datetime, connection) -> bool:
    """SQLite: record an accepted message as sent, with its audit row, in one transaction."""
    at = now.astimezone(UTC).replace(tzinfo=None)  # stored as naive UTC (UTCDateTime)
    stamp = at.strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's SQLite format
    driver = connection.connection.dbapi_connection
    cursor = driver.cursor()
    try:
        cursor.execute(_SQLITE_MARK_SENT, (attempts, stamp, item.id, item.claimed_by))
        count = cursor.rowcount
        if count:
            detail = json.dumps({"kind": item.kind})
            cursor.execute(
                _SQLITE_AUDIT_SENT, (stamp, item.id, item.patient_id, item.to_user_id, detail)
            )
        driver.commit()
    except BaseException:
        driver.rollback()
        raise
    finally:
        cursor.close()
    if not count:
        log.warning("outbox row %s was claimed by another sender meanwhile", item.id)
    return bool(count)


_SQLITE_MARK_SENT = """
UPDATE outbox_emails
SET status = 'sent', attempts = ?, sent_at = ?, last_error = NULL, locked_until = NULL
WHERE id = ? AND claimed_by = ?
"""
_SQLITE_AUDIT_SENT = """
INSERT INTO audit_events
    (at, action, object_type, object_id, patient_id, recipient_id, outcome, detail)
VALUES (?, 'email.sent', 'outbox_emails', ?, ?, ?, 'success', ?)
"""


def deliver_batch(
    items: list[LeasedEmail],
    *,
    now: datetime,
    deadline: float | None = None,
    smtp: SmtpLink | None = None,
) -> DeliveryReport:
    """Send leased rows over one SMTP connection, committing each outcome as it happens.

    `deadline` (a time.monotonic() value) is when this worker stops starting new messages
    and hands the rest back, so it never sends a row whose lease may have run out. `smtp`
    lets a pass keep one connection across batches; without it the batch opens its own.
    """
    report = DeliveryReport()
    if not items:
        return report
    own_link = smtp is None
    smtp = smtp or SmtpLink()
    max_attempts = current_app.config["MAIL_MAX_ATTEMPTS"]
    use_dev_mailbox = not current_app.config.get("MAIL_SERVER")
    if use_dev_mailbox and not current_app.config.get("DEV_MAILBOX"):
        log.error("MAIL_SERVER is not set: %d emails stay in the outbox", len(items))
        _release(items)
        if own_link:
            smtp.close()
        return report
    program = get_program()
    sender = (program.sender_name, current_app.config["MAIL_DEFAULT_SENDER"])
    # On a fresh installation get_program() has just added the default settings: commit
    # them now, or this session would hold SQLite's write lock while the sent-marks
    # connection waits for it.
    db.session.commit()
    marks = smtp.marks
    sent_before = marks.sent
    # Consent is checked again at send time: for the whole batch in one query, at its start.
    allowed = _consents_for(items, now)
    try:
        for index, item in enumerate(items):
            if deadline is not None and time.monotonic() >= deadline:
                marks.wait()
                _release(items[index:])
                break
            reason = _still_wanted(item, now, allowed)
            if reason:
                marks.wait()
                if _settle(item, status=OutboxStatus.CANCELLED, last_error=reason):
                    report.cancelled += 1
                db.session.commit()
                continue
            attempts = item.attempts + 1
            try:
                if use_dev_mailbox:
                    marks.wait()
                else:
                    smtp.send(
                        item,
                        sender,
                        before_data=marks.wait,
                        next_item=items[index + 1] if index + 1 < len(items) else None,
                    )
            except _MarkFailed as error:
                raise error.__cause__ from None
            except Exception as error:  # noqa: BLE001 - every failure is recorded on the row
                marks.wait()
                smtp_error = isinstance(error, smtplib.SMTPException | OSError)
                last_error = f"{type(error).__name__}: {str(error)[:300]}"
                if not smtp_error or _is_permanent(error) or attempts >= max_attempts:
                    if not smtp_error:
                        log.exception("outbox row %s could not be sent", item.id)
                    _settle(
                        item, status=OutboxStatus.FAILED, attempts=attempts, last_error=last_error
                    )
                    audit.record(
                        "email.failed",
                        object_type="outbox_emails",
                        object_id=item.id,
                        patient_id=item.patient_id,
                        now=now,
                    )
                    report.failed += 1
                else:
                    _settle(
                        item,
                        attempts=attempts,
                        last_error=last_error,
                        next_attempt_at=now + _backoff(attempts),
                    )
                    report.retried += 1
                db.session.commit()
                if not (smtp_error and _connection_still_usable(error)):
                    # The connection is suspect: hand the rest back for the next pass.
                    smtp.close()
                    _release(items[index + 1 :])
                    break
                continue
            # The server has accepted the message: record it at once, so that only a crash
            # right here can make a later pass send it again.
            marks.add(item, attempts=attempts, now=now)
    finally:
        try:
            marks.wait()
        finally:
            if own_link:
                smtp.close()
    report.sent = marks.sent - sent_before
    return report


def _close(connection: Connection | None) -> None:
    if connection is None or connection.host is None:
        return
    with contextlib.suppress(smtplib.SMTPException, OSError):
        connection.host.quit()
    connection.host.close()


def _release(items: list[LeasedEmail]) -> None:
    """Hand unsent rows back before their lease ends, so another pass can take them now."""
    for item in items:
        db.session.execute(
            update(OutboxEmail)
            .where(OutboxEmail.id == item.id, OutboxEmail.claimed_by == item.claimed_by)
            .values(locked_until=None)
            .execution_options(synchronize_session=False)
        )
    db.session.commit()


def send_pending(
    *, now: datetime, worker: str = "worker", limit: int | None = None
) -> DeliveryReport:
    """One delivery pass: claim due rows batch by batch and send them until none are left.

    `now` is the pass's starting instant; each batch acts at `now` plus the time the pass
    has taken so far, so a long pass does not lease rows with an instant already past.
    """
    batch_size = current_app.config["MAIL_BATCH_SIZE"]
    lease_seconds = current_app.config["MAIL_LEASE_SECONDS"]
    started = time.monotonic()
    total = DeliveryReport()
    handled = 0
    smtp = SmtpLink()  # one SMTP connection for the whole pass
    try:
        while limit is None or handled < limit:
            batch_now = now + timedelta(seconds=time.monotonic() - started)
            size = batch_size if limit is None else min(batch_size, limit - handled)
            items = claim_batch(now=batch_now, limit=size, worker=worker)
            if not items:
                break
            # Start no new message in the second half of the lease: the one in flight then
            # has the other half to finish before any other worker may take the row.
            deadline = time.monotonic() + lease_seconds / 2
            report = deliver_batch(items, now=batch_now, deadline=deadline, smtp=smtp)
            handled += len(items)
            total.add(report)
            if report.sent + report.failed + report.cancelled == 0:
                break  # the server is down: try again on the next pass, not in a tight loop
    finally:
        smtp.close()
        # Outcomes were written on the recorder's own connection: whatever this session
        # loaded of those rows is out of date (it keeps loaded values across commits).
        db.session.expire_all()
    return total


# --- The admin's view of the outbox.


def outbox_counts() -> dict[str, int]:
    """How many rows are in each status (every status listed, zero included)."""
    rows = db.session.execute(
        select(OutboxEmail.status, func.count()).group_by(OutboxEmail.status)
    ).all()
    counts = {str(status): 0 for status in OutboxStatus}
    counts.update({str(status): n for status, n in rows})
    return counts


def failed_emails(limit: int = 100) -> list[OutboxEmail]:
    """The most recently failed rows, newest first."""
    return list(
        db.session.scalars(
            select(OutboxEmail)
            .where(OutboxEmail.status == OutboxStatus.FAILED)
            .order_by(OutboxEmail.created_at.desc(), OutboxEmail.id.desc())
            .limit(limit)
        )
    )


def retry_failed(email_id: int, *, actor: User, now: datetime) -> OutboxEmail:
    """Put one failed row back in the queue with a fresh set of attempts.

    Raises NotFound for an unknown id or a row that is not failed. Consent and the row's
    useful-until time are still checked when it is sent.
    """
    row = db.session.get(OutboxEmail, email_id)
    if row is None or row.status != OutboxStatus.FAILED:
        raise NotFound()
    row.status = OutboxStatus.PENDING
    row.attempts = 0
    row.next_attempt_at = now
    row.locked_until = None
    row.claimed_by = None
    audit.record(
        "email.retried",
        actor=actor,
        obj=row,
        patient_id=row.patient_id,
        recipient_id=row.to_user_id,
        detail={"kind": row.kind, "last_error": (row.last_error or "")[:200]},
        now=now,
    )
    db.session.flush()
    return row
