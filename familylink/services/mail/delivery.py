"""Delivery: claim due outbox rows, build each message, send it, record the outcome (the
guarantee and its limits are in README, "Email delivery"). Consent is asked again at send
time of the check given, or of `app.extensions[CONSENT_CHECK]`; with none, nothing is sent.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import secrets
import smtplib
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import formatdate
from types import SimpleNamespace

from flask import current_app
from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.exc import OperationalError

from familylink.extensions import db
from familylink.models import OutboxEmail, OutboxStatus
from familylink.services import audit, screening, tokens
from familylink.services.program import get_program

log = logging.getLogger(__name__)

CONSENT_CHECK = "familylink_consent_check"  # its key in app.extensions
# check(pairs, scope, *, now) -> the (recipient, patient id) pairs among `pairs` that still
# hold a consent covering `scope` (None: any). The recipient is the user id, or the address
# of a row sent to no account yet (an invitation).
ConsentCheck = Callable[..., set[tuple[int | str, int]]]

OUTBOX = OutboxEmail.__table__
TOO_LATE = "too late to be useful"  # why an email past its `not_after` is cancelled
# An outcome is written only while this worker's claim on the row stands.
_SETTLE = update(OUTBOX).where(
    OUTBOX.c.id == bindparam("row_id"), OUTBOX.c.claimed_by == bindparam("token")
)


@functools.cache
def _settling(names: tuple[str, ...], sent: bool, postgresql: bool):
    """_SETTLE writing the values `names`. Only a sent record may stand over a cancellation
    made while this sender held the row (the email did go); any other outcome leaves a
    cancelled row as it is, emptied, with its reason (failed, it would be the admin's to
    retry, with no message). On PostgreSQL it also lets the commit skip waiting for the disk
    (a crash of the database server could forget the last records, and those emails would
    go again, never be lost), and returns a row for the audit INSERT to follow."""
    statement = _SETTLE.values({name: bindparam(name) for name in names})
    if not sent:
        statement = statement.where(OUTBOX.c.status == OutboxStatus.PENDING)
    if postgresql:
        statement = statement.returning(func.set_config("synchronous_commit", "off", True))
    return statement


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    cancelled: int = 0

    def __str__(self) -> str:
        return ", ".join(
            f"{name.replace('retried', 'will retry')} {n}" for name, n in vars(self).items()
        )


class _Headers(HeaderRegistry):
    """Parsing headers is most of the cost of building a message, and most values recur
    (the sender, the subjects, the MIME headers): header objects are immutable, so one is
    made per name and value, and one class per name (the stock registry makes one per use)."""

    __getitem__ = functools.cache(HeaderRegistry.__getitem__)
    __call__ = functools.lru_cache(maxsize=1024)(HeaderRegistry.__call__)


class _Header(BaseHeader):
    """A shared header object is folded once for each way of writing it."""

    def fold(self, *, policy) -> str:
        key = (policy.linesep, policy.utf8, policy.max_line_length)
        folded = self.__dict__.setdefault("_folded", {})
        if key not in folded:
            folded[key] = super().fold(policy=policy)
        return folded[key]


class _AsMade(str):
    """A header value the sender made itself (a date, a row id, a keyed hash): short, one
    line, nothing in it to parse or fold. Parsing them cost as much as the rest of the
    headers, and being new for every message they only pushed others out of the cache."""

    defects = ()

    def __new__(cls, name: str, value: str):
        header = super().__new__(cls, value)
        header.name = name
        return header

    def __getnewargs__(self):  # for copy and pickle, as a parsed header has
        return self.name, str(self)

    def fold(self, *, policy) -> str:
        return f"{self.name}: {self}{policy.linesep}"


POLICY = EmailPolicy(header_factory=_Headers(base_class=_Header))
# As smtplib's send_message writes a message: CRLF, and UTF-8 headers for an address that
# needs SMTPUTF8 (which `SmtpLink.send` then asks the server for).
_WIRE = {False: POLICY.clone(linesep="\r\n"), True: POLICY.clone(linesep="\r\n", utf8=True)}
# "=_" never appears in a quoted-printable or base64 part, and a body is checked for the rest.
BOUNDARY = f"=_{secrets.token_hex(12)}"


def message_id(dedupe_key: str) -> str:
    """The same Message-ID on every attempt, so duplicates can be recognised: a keyed hash
    of the dedupe key, whose record ids must not show in a header."""
    digest = tokens.keyed_digest(dedupe_key)
    domain = current_app.config["MAIL_DEFAULT_SENDER"].rpartition("@")[2] or "familylink"
    return f"<{digest}@{domain}>"


def build_message(item, sender: str) -> EmailMessage:
    """A claimed row's message from `sender`: text and HTML alternatives and the attachment
    if any. Its headers identify the outbox row only: no names, no kind of email, no patient."""
    message = EmailMessage(policy=POLICY)
    message["Subject"] = item.subject
    message["From"] = sender
    message["To"] = item.to_address
    message["Date"] = _AsMade("Date", formatdate())
    message["Message-ID"] = _AsMade("Message-ID", message_id(item.dedupe_key))
    message["X-FamilyLink-Id"] = _AsMade("X-FamilyLink-Id", str(item.id))
    # Named, not chosen: choosing, the standard library encodes a body's first lines, then all
    # of it again; quoted-printable suits any text (an HTML body's long lines got it anyway).
    message.set_content(item.text_body, cte="quoted-printable")
    message.add_alternative(item.html_body, subtype="html", cte="quoted-printable")
    if item.attachment_data:
        # Parsed as a header, so parameters such as method=REQUEST carry over.
        content_type = POLICY.header_factory("Content-Type", item.attachment_type)
        maintype, subtype = content_type.content_type.split("/")
        params = dict(content_type.params)
        message.add_attachment(
            item.attachment_data, maintype, subtype, filename=item.attachment_name, params=params
        )
    # The generator would make up a boundary per message and compile a pattern to look for it
    # in the bodies; one per process, checked here, leaves one Content-Type to parse.
    if BOUNDARY not in item.text_body and BOUNDARY not in item.html_body:
        message.set_boundary(BOUNDARY)
    return message


def _international(sender: str, to: str) -> bool:
    """Whether the envelope needs SMTPUTF8 (an address beyond ASCII), as send_message decides;
    smtplib refuses to send if the server does not offer it."""
    return not (sender + to).isascii()


def _build(item, sender: str) -> bytes | Exception:
    """The message as it goes on the wire, written out once: as text, encoded in one piece
    (the same bytes as `as_bytes`, whose generator encodes each line apart)."""
    try:
        envelope = current_app.config["MAIL_DEFAULT_SENDER"], item.to_address
        policy = _WIRE[_international(*envelope)]
        return build_message(item, sender).as_string(policy=policy).encode()
    except Exception as error:  # noqa: BLE001 - recorded on the row when its turn comes
        return error


def hands_to_a_server() -> bool:
    """Whether messages go to an SMTP server: not with no MAIL_SERVER (the dev mailbox) nor
    with sending suppressed."""
    suppressed = current_app.extensions["mail"].suppress
    return bool(current_app.config.get("MAIL_SERVER")) and not suppressed


def cleared_when_settled() -> dict:
    """What a row's UPDATE clears once it is sent over SMTP or cancelled: its whole message.
    Its bodies and attachment hold links whose tokens the database otherwise keeps only as
    hashes (a reset, an invitation) and the time and place of sessions. A failed row keeps
    them for the admin's retry; the dev mailbox (no server) keeps them to be read."""
    if not hands_to_a_server():
        return {}
    return {"text_body": "", "html_body": "", "attachment_data": None}


class SmtpLink:
    """One SMTP connection per pass, opened at the first message with Flask-Mail's settings,
    over a TLS that checks the server's certificate and name (Flask-Mail's accepts any).
    With no MAIL_SERVER (the dev mailbox) or sending suppressed, nothing leaves."""

    host: smtplib.SMTP | None = None

    def send(self, message: bytes, sender: str, to: str) -> None:
        if not hands_to_a_server():
            return
        mail, config = current_app.extensions["mail"], current_app.config
        if self.host is None:
            self.host = self._open(mail, config.get("MAIL_TIMEOUT", 10))
        utf8 = ("SMTPUTF8", "BODY=8BITMIME") if _international(sender, to) else ()
        self.host.sendmail(sender, [to], message, utf8)

    @staticmethod
    def _open(mail, timeout: float) -> smtplib.SMTP:
        # Built only when used: loading the CA store costs a tenth of a second.
        tls = ssl.create_default_context() if mail.use_ssl or mail.use_tls else None
        if mail.use_ssl:
            host = smtplib.SMTP_SSL(mail.server, mail.port, timeout=timeout, context=tls)
        else:
            host = smtplib.SMTP(mail.server, mail.port, timeout=timeout)
        try:
            if mail.use_tls:
                host.starttls(context=tls)
            if mail.username and mail.password:
                host.login(mail.username, mail.password)
        except BaseException:
            host.close()
            raise
        return host

    def close(self) -> None:
        host, self.host = self.host, None
        if host is not None:
            with contextlib.suppress(OSError):  # smtplib's errors are OSErrors
                host.quit()
            host.close()


def claim_batch(*, now: datetime, limit: int, worker: str) -> list[SimpleNamespace]:
    """Lease up to `limit` due rows to this worker (SKIP LOCKED on PostgreSQL, one atomic
    UPDATE on SQLite), commit the lease, and return the rows as the UPDATE read them. A
    crashed worker's rows come back when the lease runs out; a SQLite write lock held past
    the busy timeout gives an empty batch (the rows stay due)."""
    lease = timedelta(seconds=current_app.config["MAIL_LEASE_SECONDS"])
    due = (
        select(OUTBOX.c.id)
        .where(
            OUTBOX.c.status == OutboxStatus.PENDING,
            OUTBOX.c.next_attempt_at <= now,
            or_(OUTBOX.c.locked_until.is_(None), OUTBOX.c.locked_until < now),
        )
        .order_by(OUTBOX.c.next_attempt_at, OUTBOX.c.id)
        .limit(limit)
    )
    sqlite = db.engine.dialect.name == "sqlite"
    if not sqlite:
        due = due.with_for_update(skip_locked=True)
    token = f"{worker}:{uuid.uuid4().hex[:8]}"
    try:
        rows = db.session.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id.in_(due.scalar_subquery()))
            .values(locked_until=now + lease, claimed_by=token)
            .returning(*(c for c in OUTBOX.c if c.name not in ("created_at", "sent_at")))
        ).all()
        db.session.commit()
    except OperationalError as error:
        db.session.rollback()
        busy = ("database is locked", "database table is locked")  # the driver's, not the SQL
        if sqlite and str(error.orig).startswith(busy):
            log.warning("outbox busy (another sender holds the write lock); trying next pass")
            return []
        raise
    return sorted((SimpleNamespace(**row._mapping) for row in rows), key=lambda r: r.id)


def wired_consent_check(given: ConsentCheck | None = None) -> ConsentCheck:
    """The consent check to use: `given`, else the app's; never none at all."""
    check = given or current_app.extensions.get(CONSENT_CHECK)
    if check is None:
        raise RuntimeError(
            f"no consent check: pass consent_check= or set app.extensions[{CONSENT_CHECK!r}]"
            " (create_app does); emails about patients cannot be sent without one"
        )
    return check


def _consent_key(item) -> tuple:
    """Whom a row tells (the account, or the address), about which patient, under which scope."""
    who = item.to_user_id if item.to_user_id is not None else item.to_address
    return who, item.patient_id, item.required_scope


def _allowed(items: list, now: datetime, check: ConsentCheck) -> set[tuple]:
    """The consent keys of the batch's rows about a patient that may still be sent."""
    wanted: dict[str | None, set[tuple]] = {}
    for who, patient_id, scope in {_consent_key(i) for i in items if i.patient_id is not None}:
        wanted.setdefault(scope, set()).add((who, patient_id))
    return {
        (*pair, scope) for scope, pairs in wanted.items() for pair in check(pairs, scope, now=now)
    }


def _attempt(smtp: SmtpLink, item, message, allowed: set, now: datetime):
    """Send one row's message: None once the server accepted it, else why it is not sent (a
    string: cancelled) or the error (it failed, or will be retried)."""
    if item.not_after is not None and item.not_after <= now:
        return TOO_LATE
    if item.patient_id is not None and _consent_key(item) not in allowed:
        return "consent ended"
    if isinstance(message, Exception):
        return message
    try:
        smtp.send(message, current_app.config["MAIL_DEFAULT_SENDER"], item.to_address)
    except Exception as error:  # noqa: BLE001 - every failure is recorded on the row
        return error
    return None


def _outcome(item, result, now: datetime, cleared: dict) -> tuple[str, dict, dict | None]:
    """The report's name for an attempt, what it writes to its row (`cleared` too, once sent
    or cancelled), and its audit event. A 5xx reply, the last attempt, or an error neither
    the server's nor the network's fails for good; any other error is retried later."""
    if isinstance(result, str):
        cancelled = {"status": OutboxStatus.CANCELLED, "last_error": result, **cleared}
        return "cancelled", cancelled, None
    attempts = item.attempts + 1
    if result is None:
        done = {"status": OutboxStatus.SENT, "sent_at": now, "last_error": None, **cleared}
        event = {"action": "email.sent", "now": now, "recipient_id": item.to_user_id}
        return "sent", done | {"attempts": attempts}, event | {"detail": {"kind": item.kind}}
    values = {"attempts": attempts, "last_error": f"{type(result).__name__}: {str(result)[:300]}"}
    if isinstance(result, OSError):  # smtplib's errors are OSErrors too
        if _smtp_code(result) < 500 and attempts < current_app.config["MAIL_MAX_ATTEMPTS"]:
            return "retried", values | {"next_attempt_at": now + _backoff(attempts)}, None
    else:
        log.error("outbox row %s could not be sent", item.id, exc_info=result)
    return (
        "failed",
        values | {"status": OutboxStatus.FAILED},
        {"action": "email.failed", "now": now},
    )


def _backoff(attempts: int) -> timedelta:
    """Exponential backoff with jitter: about 30 s, 1 min, 2 min … capped at 6 hours."""
    return timedelta(seconds=min(30 * 2 ** (attempts - 1), 6 * 3600) * random.uniform(0.8, 1.2))


def _smtp_code(error: OSError) -> int:
    """The server's reply code (the worst recipient's, when all were refused); -1: none."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return min(code for code, _ in error.recipients.values())
    return getattr(error, "smtp_code", -1)


def _record(records, item, values: dict, event: dict | None) -> bool:
    """Write an outcome to the row and `event` (audit.values' fields) to the audit log while
    this worker's claim stands (and, unless sent, the row is not cancelled), and commit;
    False, nothing written, if not. On PostgreSQL that is one statement, committing itself
    (see `_connect`)."""
    values = {"locked_until": None, **values}
    postgresql = records.dialect.name == "postgresql"
    change = _settling(tuple(values), values.get("status") == OutboxStatus.SENT, postgresql)
    values |= {"row_id": item.id, "token": item.claimed_by}
    if event:
        about = {"object_type": OUTBOX.name, "object_id": item.id, "patient_id": item.patient_id}
        event = audit.values(**about, **event)
    if event and postgresql:
        settled = bool(audit.record_each(change, values, event, connection=records))
    else:
        settled = bool(records.execute(change, values).rowcount)
        if settled and event:
            audit.record_many([event], connection=records)
    if not settled:
        log.warning("outbox row %s was cancelled or claimed by another sender meanwhile", item.id)
    records.commit()
    return settled


def _connect():
    """The connection outcomes are written on, one transaction each. On PostgreSQL, where an
    outcome and its audit row are one statement, that statement commits itself: a COMMIT
    would cost a round trip more per email."""
    records = db.engine.connect()
    if records.dialect.name == "postgresql":
        records.execution_options(isolation_level="AUTOCOMMIT")
    return records


def _release(records, items: list) -> None:
    """Hand unsent rows back before their lease ends, so another pass can take them now."""
    if items:
        tokens = [{"row_id": item.id, "token": item.claimed_by} for item in items]
        records.execute(_SETTLE.values(locked_until=None), tokens)
    records.commit()


def deliver_batch(
    items: list, *, now: datetime, deadline: float | None = None, smtp=None, records=None,
    consent_check: ConsentCheck | None = None, report: DeliveryReport | None = None,
) -> DeliveryReport:  # fmt: skip
    """Send claimed rows over one SMTP connection, committing each outcome as it happens;
    count them in `report` (a new one if none) and return it. At `deadline` (a
    time.monotonic() value) the rest is handed back unsent, so no row is sent after its lease
    may have run out. `smtp` and `records` (see `_connect`) let a pass keep both across
    batches; without them the batch opens its own."""
    check, config = wired_consent_check(consent_check), current_app.config
    report = report if report is not None else DeliveryReport()
    if not items:
        return report
    with contextlib.ExitStack() as own:
        smtp = smtp or own.enter_context(contextlib.closing(SmtpLink()))
        records = records or own.enter_context(_connect())
        if not config.get("MAIL_SERVER") and not config.get("DEV_MAILBOX"):
            log.error("MAIL_SERVER is not set: %d emails stay in the outbox", len(items))
            _release(records, items)
            return report
        allowed = _allowed(items, now, check)
        db.session.commit()  # the check's transaction ends here; the records have their own
        # A stored name with a line break would make every email fail; one saved before the
        # screen existed could name the kind of care: either gives way to a neutral name.
        name = screening.safe_sender_name(get_program().sender_name)
        sender = str(Address(name, addr_spec=config["MAIL_DEFAULT_SENDER"]))  # quoted if need be
        # Built before the first is sent: between two messages only sending and recording.
        messages = [_build(item, sender) for item in items]
        cleared = cleared_when_settled()
        for index, (item, message) in enumerate(zip(items, messages, strict=True)):
            if deadline is not None and time.monotonic() >= deadline:
                _release(records, items[index:])
                break
            result = _attempt(smtp, item, message, allowed, now)
            # Committed before the next message goes out: a crash can repeat only this one.
            counted, values, event = _outcome(item, result, now, cleared)
            if _record(records, item, values, event):
                setattr(report, counted, getattr(report, counted) + 1)
            # After a refused recipient smtplib resets the session; a 421 or an I/O error ends
            # it, and the rest of the batch goes on the next pass.
            lost = isinstance(result, OSError) and _smtp_code(result) in (-1, 421)
            if lost and not isinstance(result, smtplib.SMTPRecipientsRefused):
                smtp.close()
                _release(records, items[index + 1 :])
                break
    return report


def send_pending(
    *, now: datetime, worker: str = "worker", consent_check: ConsentCheck | None = None
) -> DeliveryReport:
    """One delivery pass: claim due rows batch by batch and send them until none are left.
    Each batch acts at `now` plus the time the pass has taken so far, so a long pass does
    not lease rows with an instant already past."""
    check = wired_consent_check(consent_check)  # before any row is leased
    config, started, total = current_app.config, time.monotonic(), DeliveryReport()
    with contextlib.closing(SmtpLink()) as smtp, _connect() as records:
        while True:
            batch_now = now + timedelta(seconds=time.monotonic() - started)
            items = claim_batch(now=batch_now, limit=config["MAIL_BATCH_SIZE"], worker=worker)
            # No new message in the second half of the lease: the one in flight then has the
            # other half to finish before any other worker may take the row.
            deadline = time.monotonic() + config["MAIL_LEASE_SECONDS"] / 2
            settled = total.sent + total.failed + total.cancelled
            deliver_batch(
                items, now=batch_now, deadline=deadline, smtp=smtp, records=records,
                consent_check=check, report=total,
            )  # fmt: skip
            if total.sent + total.failed + total.cancelled == settled:
                break  # none left, or the server is down: the next pass tries again
    db.session.expire_all()  # the rows were settled by Core statements the session missed
    return total
