"""Email: queued here, inside the caller's transaction; delivered later, reliably, by
`delivery` (whose steps tests and benchmarks import from it). Callers write
`from familylink.services import mail`.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import jinja2
import markupsafe
from flask import current_app
from flask_babel import force_locale, get_locale, get_translations
from sqlalchemy import and_, or_, update

from familylink.extensions import db
from familylink.i18n import PROJECT_ROOT, normalise
from familylink.models import OutboxEmail, OutboxStatus, User
from familylink.services import audit, screening
from familylink.services.bulk import insert_rows
from familylink.services.links import external_url  # noqa: F401
from familylink.services.mail.delivery import (  # noqa: F401
    CONSENT_CHECK,
    TOO_LATE,
    cleared_when_settled,
    send_pending,
    wired_consent_check,
)
from familylink.services.program import get_program

# Every kind of email is three templates: its subject, text and HTML. Subjects are neutral:
# they never name the kind of care, a diagnosis or a substance.
KINDS = sorted(
    p.name.split(".")[0] for p in (PROJECT_ROOT / "templates/email").glob("*.subject.txt")
)


@dataclass
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass
class Queued:
    """One email to queue. `patient_id`: the patient it is about (its audit rows name them);
    the consent check must still allow the recipient `required_scope` about that patient at
    send time, or the email is cancelled instead of sent."""

    kind: str
    to: User | str  # or any account with the same id, email, name and timezone
    dedupe_key: str
    context: dict | None = None
    patient_id: int | None = None
    required_scope: str | None = None
    not_after: datetime | None = None
    send_at: datetime | None = None
    attachment: Attachment | None = None
    actor: User | None = None
    # The language of an email to an address with no account yet (an invitation's); an
    # account's own setting (`users.locale`) wins over it. Neither: the request's language
    # (whoever asked for a reset or an address change reads the answer in their own).
    locale: str | None = None
    # Keys of `context` whose values the templates print as they are (escaped in HTML) and
    # may test for emptiness, nothing else: a batch of emails differing only in those
    # values (a sweep's reminders: each session's time, title and place) is rendered once.
    printed: tuple[str, ...] = ()

    @property
    def language(self) -> str:
        own = None if isinstance(self.to, str) else getattr(self.to, "locale", None)
        return normalise(own or self.locale or str(get_locale() or ""))


def queue_email(kind: str, *, to: User | str, dedupe_key: str, now: datetime, **fields):
    """Render one email and add it to the outbox (`fields`: those of Queued); return its
    row, or None when that dedupe key was queued before."""
    added = _insert([Queued(kind, to, dedupe_key, **fields)], now=now)
    return db.session.get(OutboxEmail, added[0]) if added else None


def queue_many(emails: list[Queued], *, now: datetime, audited: list[dict] = ()) -> int:
    """Queue many emails at once, as queue_email would one by one; return how many were new.
    `audited`: the audit rows (made by `audit.values`) of what the emails tell, written just
    before theirs, in the same INSERT."""
    if not emails:
        audit.record_many(list(audited), at_once=True)
        return 0
    return len(_insert(emails, now=now, audited=audited))


def _insert(emails: list[Queued], *, now: datetime, audited: list[dict] = ()) -> list[int]:
    """Render the emails, insert them in one statement that skips every dedupe key already
    in the outbox (whoever queued it, even a moment ago: overlapping sweeps queue each email
    once), then `audited` and their audit rows in one more. Returns the ids of those added."""
    outbox = OutboxEmail.__table__
    rows = _rendered(emails, now)
    db.session.flush()  # the accounts they are addressed to
    added = insert_rows(
        db.session.connection(),
        outbox,
        rows,
        skip_existing=outbox.c.dedupe_key,
        returning=(outbox.c.id, outbox.c.dedupe_key),
    )
    by_key = {email.dedupe_key: email for email in emails}
    queued = [_queued_event(by_key[key], row_id, now) for row_id, key in added]
    # A change's own rows are written at once, as `audit.record` would flush them.
    audit.record_many([*audited, *queued], at_once=bool(audited))
    return sorted(row_id for row_id, _ in added)


def _rendered(emails: list[Queued], now: datetime) -> list[dict]:
    """The outbox rows, each email in its recipient's language: the emails of one language
    are rendered together, under one `force_locale` (a sweep switches a few times, not once
    per email); the rows keep the order of `emails`."""
    rows, stored = [None] * len(emails), get_program()
    by_language: dict[str, list[int]] = {}
    for index, email in enumerate(emails):
        by_language.setdefault(email.language, []).append(index)
    for language, indexes in by_language.items():
        with force_locale(language):
            # The name the message signs with is the one its From header gives.
            sender_name = screening.safe_sender_name(stored.sender_name)
            program = dataclasses.replace(stored, sender_name=sender_name)
            # One email alone has nothing to share a render with: it is rendered as it is.
            templates = _Templates(get_translations(), shared=len(indexes) > 1)
            for index in indexes:
                rows[index] = _row(emails[index], now, templates, program)
    return rows


def _row(email: Queued, now: datetime, templates: _Templates, program) -> dict:
    """The outbox row of one email: addressed, rendered, due at `send_at`."""
    to = email.to
    person = None if isinstance(to, str) else to
    zone = person.timezone if person is not None else program.timezone
    context = {"program": program, "recipient": person, "zone": zone, **(email.context or {})}
    subject, text, html = templates.bodies(email, context)
    attachment = email.attachment or Attachment(None, None, None)
    return {
        "kind": email.kind,
        "to_address": person.email if person is not None else to.lower(),
        "to_user_id": person.id if person is not None else None,
        "subject": subject,
        "text_body": text,
        "html_body": html,
        "dedupe_key": email.dedupe_key,
        "patient_id": email.patient_id,
        "required_scope": email.required_scope,
        "attachment_name": attachment.filename,
        "attachment_type": attachment.content_type,
        "attachment_data": attachment.data,
        "created_at": now,
        "next_attempt_at": email.send_at or now,
        "not_after": email.not_after,
        "status": OutboxStatus.PENDING,
        "attempts": 0,
    }


class _NotShared(Exception):
    pass


# A slot's marker: its number between NULs, which no template or stored text writes. The
# space and the two cases of a letter make a template that changes a value rather than
# print it (its first word, upper case, title case) change the marker too: found broken,
# those emails are rendered one by one. The first name (slot 0) is one word already, so
# its marker has no space: greetings take the first word of what they are given.
_SLOT = re.compile("\x00([0-9]+) ?kK\x00")


def _marker(index: int) -> str:
    return f"\x00{index} kK\x00" if index else "\x000kK\x00"


class _AnyRecipient:
    """A stand-in recipient whose first name is a slot; reading anything else about the
    recipient means the email cannot be shared between recipients."""

    first_name = _marker(0)

    def __getattr__(self, name: str):
        raise _NotShared(name)


class _Shape(NamedTuple):
    """The bodies of every email of one kind, zone and language whose contexts differ only
    in their printed values (a sweep's reminders: each session's time, title and place, to
    one person or another), rendered once with a marker for each of those values and for
    the recipient's first name: each body as its pieces, literal text and slot numbers
    taking turns. `names`: the context's keys whose values fill slots 1, 2, …"""

    names: tuple[str, ...]
    bodies: tuple[list, list, list]

    def fill(self, first_name: str, context: dict) -> tuple[str, str, str]:
        values = [first_name, *(context[name] for name in self.names)]
        escaped = [markupsafe.escape(value) for value in values]
        subject, text, html = self.bodies
        return _filled(subject, values), _filled(text, values), _filled(html, escaped)


def _filled(pieces: list, values: list) -> str:
    filled = pieces.copy()
    for index in range(1, len(pieces), 2):
        filled[index] = values[pieces[index]]
    return "".join(filled)


class _Templates(dict):
    """Each email template looked up once per INSERT and language, and rendered with its
    context alone (emails use no request, session or context processor): its globals copied
    once, not merged per render as `Template.render` does, and gettext bound to the
    language's catalogue (Flask-Babel's looks it up again for every string)."""

    def __init__(self, translations=None, *, shared: bool = False):
        super().__init__()
        self.gettext, self.shapes, self.shared = {}, {}, shared
        if translations is not None:  # autoescape is the email templates' own, not this one's
            bound = jinja2.Environment(extensions=["jinja2.ext.i18n"])  # noqa: S701
            bound.install_gettext_translations(translations, newstyle=True)
            gettext, ngettext = bound.globals["gettext"], bound.globals["ngettext"]
            # `_` straight to gettext: the extension's alias resolves and calls it again.
            self.gettext = {"gettext": gettext, "_": gettext, "ngettext": ngettext}

    def __missing__(self, name: str):
        template = current_app.jinja_env.get_template(name)
        self[name] = functools.partial(_render, template, {**template.globals, **self.gettext})
        return self[name]

    def bodies(self, email: Queued, context: dict) -> tuple[str, str, str]:
        """The subject, text and HTML. Emails whose contexts differ only in their `printed`
        values and the recipient's first name share one render (`_Shape`) when `shared`,
        unless the templates read more of the recipient or change a marker rather than
        print it."""
        person = context["recipient"]
        # Someone with no name to give gets the nameless greeting ("Hello,"), which the
        # marker's text cannot turn into.
        if not self.shared or email.context is None or person is None or not person.first_name:
            return self._render_all(email.kind, context)
        # An empty printed value stays itself: a template may test whether there is one.
        names = tuple(name for name in email.printed if email.context[name])
        rest = (
            (name, _same_render(value))
            for name, value in email.context.items()
            if name not in names
        )
        key = (email.kind, context["zone"], names, *rest)
        if key not in self.shapes:
            self.shapes[key] = self._shape(email.kind, context, names)
        shape = self.shapes[key]
        if shape is None:
            return self._render_all(email.kind, context)
        return shape.fill(person.first_name, context)

    def _shape(self, kind: str, context: dict, names: tuple[str, ...]) -> _Shape | None:
        marked = {name: _marker(index) for index, name in enumerate(names, start=1)}
        try:
            bodies = self._render_all(kind, context | marked | {"recipient": _AnyRecipient()})
        except _NotShared:
            return None
        pieces = tuple(_SLOT.split(body) for body in bodies)
        if any("\x00" in piece for body in pieces for piece in body[::2]):
            return None  # a marker the templates changed (a filter): its value would be lost
        for body in pieces:
            body[1::2] = map(int, body[1::2])
        return _Shape(names, pieces)

    def _render_all(self, kind: str, context: dict) -> tuple[str, str, str]:
        context["subject"] = self[f"email/{kind}.subject.txt"](context).strip()
        return (
            context["subject"],
            self[f"email/{kind}.txt"](context),
            self[f"email/{kind}.html"](context),
        )


def _same_render(value):
    """What decides a value's part of a render: the value with its type (1 and True are
    equal, but print differently), or the object itself when it has no value equality."""
    try:
        hash(value)
    except TypeError:
        return ("object", id(value))
    return (type(value), value)


def _render(template, globals_: dict, context: dict) -> str:
    context = template.new_context({**globals_, **context}, shared=True)
    return template.environment.concat(template.root_render_func(context))


def _queued_event(email: Queued, row_id: int, now: datetime) -> dict:
    to_user_id = None if isinstance(email.to, str) else email.to.id
    return audit.values(
        "email.queued",
        actor=email.actor,
        object_type=OutboxEmail.__tablename__,
        object_id=row_id,
        patient_id=email.patient_id,
        recipient_id=to_user_id,
        detail={"kind": email.kind},
        now=now,
    )


def cancel_pending(
    *,
    patient_id: int,
    to_user_ids=(),
    to_address: str | None = None,
    scopes=None,
    reason: str = "consent ended",
) -> int:
    """Cancel every unsent email (queued, or failed and waiting for an admin's retry) about
    that patient to those people, or to that address (invitations, sent before there was an
    account), or only those needing one of `scopes` when given; return how many. `reason`
    is kept as each one's last error, what the admin's outbox page shows; their bodies go
    (`delivery.cleared_when_settled`) unless the dev mailbox shows them."""
    to = [OutboxEmail.to_user_id.in_(list(to_user_ids))]
    if to_address is not None:
        to.append(OutboxEmail.to_address == to_address.lower())
    which = and_(OutboxEmail.patient_id == patient_id, or_(*to))
    if scopes is not None:
        which = and_(which, OutboxEmail.required_scope.in_([str(s) for s in scopes]))
    return cancel_unsent(which, reason=reason)


def expire_unsent(now: datetime) -> int:
    """Cancel every unsent email whose useful-until time (`not_after`: a link's end, a
    session's start, an offer's) has passed, a failed one too, unless a sender holds it
    right now; return how many (the mail worker's sweep). Their bodies go with them, so a
    failed email keeps a link no longer than the link could open anything. One audit row
    counts them (never whose)."""
    expired = cancel_unsent(
        and_(
            OutboxEmail.not_after <= now,
            or_(OutboxEmail.locked_until.is_(None), OutboxEmail.locked_until < now),
        ),
        reason=TOO_LATE,
    )
    if expired:
        audit.record("email.expired", detail={"emails": expired}, now=now)
    return expired


# Queued, or failed and waiting for an admin's retry.
_UNSENT = OutboxEmail.status.in_((OutboxStatus.PENDING, OutboxStatus.FAILED))


def cancel_unsent(which, *, reason: str) -> int:
    """Cancel the unsent emails among the rows `which` (queued, or failed: an admin's retry
    would send what is no longer true), keeping `reason` as their last error, and clear what
    `delivery.cleared_when_settled` says; return how many."""
    result = db.session.execute(
        update(OutboxEmail)
        .where(_UNSENT, which)
        .values(
            status=OutboxStatus.CANCELLED,
            last_error=reason,
            locked_until=None,
            **cleared_when_settled(),
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount
