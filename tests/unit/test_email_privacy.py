"""Every email kind, rendered with realistic data and delivered, reveals nothing clinical.

Each kind in mail.KINDS needs a case in CASES (kind -> a builder of realistic
arguments for queue_email). A kind added without one fails here, so no kind can skip
the check. The whole delivered message is checked: headers, subject, text, HTML and any
calendar (.ics) part, against the deny-list and for a single recipient.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from email.utils import getaddresses

import pytest
from flask import current_app

from familylink.extensions import db
from familylink.models import Appointment, ConsentRecord, Role, Scope, SessionType, User
from familylink.services import mail, reminders
from familylink.services.booking import notices
from familylink.services.booking.rooms import room_name
from familylink.services.calendar.ics import ics_attachment
from familylink.services.program import forget_cached_program, program_row
from familylink.services.timefmt import format_local
from tests.booking_setup import add_appointment
from tests.factories import create_consent, create_user
from tests.moments import NOON

PATIENT_SURNAME = "Whitfield"

# The deny-list of the issue, kept here rather than imported from services/screening.py (the
# one screen for staff-typed text): a test should not take its answer from the code it
# checks. tests/unit/test_screening.py checks the other way: the screen refuses every word.
# Matched anywhere in a word ("recover" also catches "recovery", "recovering").
DENIED_STEMS = [
    "addict",
    "substance",
    "recover",
    "rehab",
    "detox",
    "alcohol",
    "opioid",
    "methadone",
    "suboxone",
    "treatment",
    "outpatient",
    "depress",
    "anxiet",
    "bipolar",
    "disorder",
    PATIENT_SURNAME,
]
# The same in Spanish, written without accents: a message is checked with its accents off.
DENIED_STEMS_SPANISH = [
    "adiccion",
    "adicto",
    "sustancia",
    "recuperacion",
    "rehabilitacion",
    "desintoxicacion",
    "opioide",
    "opiaceo",
    "metadona",
    "buprenorfina",
    "tratamiento",
    "terapia",
    "ambulatori",
    "ansiedad",
    "trastorno",
    "salud mental",
]
# Short ones only as whole words, so "sudden" or "period" do not count.
DENIED_WORDS = ["IOP", "SUD"]
_DENIED = re.compile(
    "|".join(
        [re.escape(s) for s in DENIED_STEMS + DENIED_STEMS_SPANISH]
        + [rf"\b{w}\b" for w in DENIED_WORDS]
    ),
    re.IGNORECASE,
)


def denied(text: str) -> str | None:
    """The first denied word in `text` (accents taken off first: "adicción" is caught)."""
    plain = "".join(
        ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)
    )
    hit = _DENIED.search(plain)
    return hit.group() if hit else None


ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Video rooms: emails and calendar files carry only the FamilyLink join link, never the room.
ROOM_HOST = "meet.example-clinic.org"
ROOM_TEMPLATE = f"https://{ROOM_HOST}/{{room}}"
LINK = "https://familylink.test/link/Qx7vT2mPz9"


@dataclass
class People:
    patient: User
    family: User
    therapist: User
    admin: User
    consent: ConsentRecord
    session: Appointment  # a private family session in a room
    group: Appointment  # a multi-family group by video (its own room)


@dataclass
class Case:
    """What one kind is queued with: recipient, template context, patient and attachment."""

    to: User | str  # an account, or an address with none yet (invitations)
    context: dict = field(default_factory=dict)
    patient: User | None = None
    scope: str | None = None
    attachment: mail.Attachment | None = None


CASES: dict[str, Callable[[People], Case]] = {
    "verify_email": lambda p: Case(to=p.family, context={"link": LINK}),
    "already_registered": lambda p: Case(to=p.family, context={"link": LINK}),
    "password_reset": lambda p: Case(to=p.family, context={"link": LINK}),
    "reset_no_account": lambda p: Case(to="nobody@example.org"),
    "staff_invitation": lambda p: Case(to=p.therapist, context={"link": LINK, "inviter": p.admin}),
    "patient_invitation": lambda p: Case(
        to=p.patient, context={"link": LINK, "inviter": p.therapist}
    ),
    "module_assigned": lambda p: Case(
        to=p.family, context={"link": LINK}, patient=p.patient, scope="progress"
    ),
    # As progress_updates._release queues it: a link home, no word of the update itself.
    "progress_update": lambda p: Case(
        to=p.family, context={"link": LINK}, patient=p.patient, scope="progress"
    ),
    # As consent.sign_consent queues it: to the address of an open consent, as a string (no
    # account is assumed; the sender checks that consent again before sending).
    "family_invitation": lambda p: Case(
        to=p.consent.recipient_email,
        context={
            "link": LINK,
            "recipient_name": f"Luis {PATIENT_SURNAME}",
            "patient_first_name": p.patient.first_name,
        },
        patient=p.patient,
    ),
    "family_access_ended": lambda p: Case(
        to=p.family, context={"recipient_name": p.consent.recipient_name}
    ),
    "family_access_ended_therapist": lambda p: Case(
        to=p.therapist,
        context={
            "patient_first_name": p.patient.first_name,
            "consent": p.consent,
            "reason": "revoked",
            "cancelled": 2,  # as end_family_access passes it: how many emails it cancelled
            "sessions": 3,  # and how many future sessions it took the member off
            "link": LINK,
        },
    ),
    # As consent.ending.end_scopes queues it: the scopes by their labels, nothing clinical.
    "family_access_narrowed_therapist": lambda p: Case(
        to=p.therapist,
        context={
            "patient_first_name": p.patient.first_name,
            "consent": p.consent,
            "dropped": [Scope.SCHEDULING, Scope.PROGRESS],
            "link": LINK,
        },
    ),
    "family_access_ended_patient": lambda p: Case(
        to=p.patient,
        context={"consent": p.consent, "ended_at": p.consent.expires_at, "link": LINK},
    ),
    "consent_expiring": lambda p: Case(
        to=p.patient,
        context={"consent": p.consent, "ends_at": p.consent.expires_at, "link": LINK},
    ),
    # The video session: its emails and .ics must carry the join link, not its room.
    "booking_confirmed": lambda p: booking_case(p, p.group),
    "booking_rescheduled": lambda p: booking_case(p, p.group),
    "booking_cancelled": lambda p: booking_case(p, p.group, cancelled=True),
    "late_cancellation": lambda p: Case(
        to=p.therapist,
        context={**notices.mail_context(p.session, p.therapist), "patient": p.patient},
    ),
    "waitlist_offer": lambda p: Case(
        to=p.family,
        context={
            **notices.mail_context(p.group, p.family),
            "until": format_local(NOON + timedelta(hours=12), p.family.timezone),
            "link": LINK,
        },
        patient=p.patient,
        scope="scheduling",
    ),
    "email_change_verify": lambda p: Case(to="maria.new@example.org", context={"link": LINK}),
    "email_changed_notice": lambda p: Case(
        to="maria.w@example.org", context={"name": p.family.first_name}
    ),
    "password_changed_notice": lambda p: Case(to=p.family),
    "reminder": lambda p: Case(
        to=p.family,
        context=reminders.reminder_context(p.group, p.family),
        patient=p.patient,
        scope="scheduling",
    ),
}


def booking_case(p: People, appointment: Appointment, *, cancelled: bool = False) -> Case:
    """A booking email as notices.tell_attendees queues it: context and the person's .ics."""
    return Case(
        to=p.family,
        context=notices.mail_context(appointment, p.family),
        patient=p.patient,
        scope="scheduling",
        attachment=ics_attachment(appointment, p.family, now=NOON, cancelled=cancelled),
    )


def test_the_patient_reminder_reveals_nothing_either(people, mail_app, smtp_server, now):
    """The patient's own reminder, as the sweep queues it, names no one but the therapist."""
    moment = people.session.starts_at - timedelta(hours=48)
    assert reminders.run_sweep(moment) == 2
    mail.send_pending(now=moment)
    by_address = {
        m["To"]: (m, e) for m, e in zip(smtp_server.parsed(), smtp_server.messages, strict=True)
    }
    for address in (people.patient.email, people.family.email):
        message, envelope = by_address[address]
        assert problems(message, address, envelope.rcpt_tos) == []
        assert "Grace Lee" in message.get_body(("plain",)).get_content()


def problems(
    message: EmailMessage, recipient: str, envelope_to: list[str], room_tokens=()
) -> list[str]:
    """Everything wrong with a delivered message, in words (empty: nothing wrong); a room
    (its host, or one of `room_tokens`) anywhere in it is wrong."""
    found = []
    for name, value in message.items():
        if hit := denied(str(value)):
            found.append(f"header {name} contains {hit!r}")
    for part in message.walk():
        if part.is_multipart():
            continue
        content = part.get_content()
        if isinstance(content, bytes):
            content = content.decode("utf-8", "replace")
        kind = part.get_content_type()
        if kind == "text/calendar":  # unfold RFC 5545 lines: a folded word or address is whole
            content = re.sub(r"\r?\n[ \t]", "", content)
        if hit := denied(content):
            found.append(f"{kind} part contains {hit!r}")
        if ROOM_HOST in content or any(token in content for token in room_tokens):
            found.append(f"{kind} part reveals a video room")
        sender = current_app.config["MAIL_DEFAULT_SENDER"]
        others = {a.lower() for a in ADDRESS.findall(content)} - {recipient, sender}
        if others:
            found.append(f"{kind} part names other addresses: {sorted(others)}")
    to = [address for _, address in getaddresses(message.get_all("To", []))]
    if to != [recipient] or envelope_to != [recipient]:
        found.append(f"recipients: To {to}, envelope {envelope_to}")
    for header in ("Cc", "Bcc", "Reply-To"):
        if message[header]:
            found.append(f"{header} header present")
    return found


@pytest.fixture
def people(mail_app):
    with mail_app.app_context():
        program = program_row()
        # A realistic clinic name that must never reach an inbox: emails use the sender name.
        program.name = "Riverside Recovery IOP"
        program.sender_name = "Riverside Family Sessions"
        program.video_room_template = ROOM_TEMPLATE
        db.session.flush()
        forget_cached_program()
        patient = create_user(
            Role.PATIENT, name=f"Jordan {PATIENT_SURNAME}", email="jordan.w@example.org"
        )
        family = create_user(
            Role.FAMILY, name=f"Maria {PATIENT_SURNAME}", email="maria.w@example.org"
        )
        therapist = create_user(Role.THERAPIST, name="Grace Lee", email="grace.lee@example.org")
        admin = create_user(Role.ADMIN, name="Alex Morgan", email="alex.morgan@example.org")
        patient.therapist_id = therapist.id
        consent = create_consent(patient, family, scopes=("scheduling", "attendance", "progress"))
        session, group = appointments(therapist, patient, family)
        db.session.commit()
        yield People(patient, family, therapist, admin, consent, session, group)
        db.session.rollback()


def appointments(therapist: User, patient: User, family: User):
    """A private session in a room and a video group, the family booked in both."""
    room = SessionType(name="Family session", duration_minutes=50, location="Room 2")
    video = SessionType(
        name="Multi-family group",
        duration_minutes=90,
        capacity=8,
        mode="video",
    )
    return [
        add_appointment(
            therapist, patient, family, kind, starts_at=NOON + timedelta(days=days), booked_at=NOON
        ).appointment
        for days, kind in ((3, room), (4, video))
    ]


def deliver(kind: str, case: Case, smtp_server, now, *, locale: str | None = None):
    """Queue the case's email (to an address: in `locale`) and send it; the SMTP envelope and
    the message as delivered."""
    mail.queue_email(
        kind,
        to=case.to,
        dedupe_key=f"privacy:{kind}",
        now=now,
        context=case.context,
        patient_id=case.patient.id if case.patient else None,
        required_scope=case.scope,
        attachment=case.attachment,
        locale=locale,
    )
    db.session.commit()
    assert mail.send_pending(now=now).sent == 1
    (envelope,) = smtp_server.messages
    (message,) = smtp_server.parsed()
    return envelope, message


def test_every_email_kind_has_a_privacy_case():
    missing = set(mail.KINDS) - set(CASES)
    assert not missing, f"add a case to CASES for: {sorted(missing)}"


@pytest.mark.parametrize("kind", mail.KINDS)
def test_email_reveals_nothing_clinical_and_has_one_recipient(
    kind, people, mail_app, smtp_server, now
):
    if kind not in CASES:
        pytest.fail(f"no privacy case for email kind {kind!r}: add one to CASES")
    case = CASES[kind](people)
    address = case.to if isinstance(case.to, str) else case.to.email
    envelope, message = deliver(kind, case, smtp_server, now)
    rooms = [people.session.room_token, people.group.room_token]
    rooms += [room_name(people.session), room_name(people.group)]
    assert problems(message, address, envelope.rcpt_tos, rooms) == []
    if case.attachment is not None:
        expected = case.attachment.content_type.split(";")[0]  # parameters aside (charset)
        assert any(p.get_content_type() == expected for p in message.walk())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Your recovery journey", "recover"),
        ("Family session at the IOP clinic", "IOP"),
        ("Jordan Whitfield's session", PATIENT_SURNAME),
        ("SUD services", "SUD"),
    ],
)
def test_the_check_catches_what_it_must(mail_app, text, expected):
    message = EmailMessage()
    message["To"] = "maria.w@example.org"
    message["Subject"] = "Your appointment"
    message.set_content(text)
    with mail_app.app_context():
        found = problems(message, "maria.w@example.org", ["maria.w@example.org"])
    assert any(expected.lower() in item.lower() for item in found)


def test_the_check_catches_a_second_recipient(mail_app):
    message = EmailMessage()
    message["To"] = "maria.w@example.org, luis@example.org"
    message.set_content("See you Tuesday. Also coming: ada@example.org")
    with mail_app.app_context():
        found = problems(message, "maria.w@example.org", ["maria.w@example.org"])
    assert len(found) == 2


def test_video_reminders_carry_the_join_link_and_never_the_room(people, mail_app, smtp_server, now):
    """As the sweep queues them, to the family member and the patient of the video group."""
    moment = people.group.starts_at - timedelta(hours=2)
    assert reminders.run_sweep(moment) == 2
    mail.send_pending(now=moment)
    join = f"/join/{people.group.join_token}"
    for message, envelope in zip(smtp_server.parsed(), smtp_server.messages, strict=True):
        rooms = [people.group.room_token, room_name(people.group)]
        assert problems(message, message["To"], envelope.rcpt_tos, rooms) == []
        assert join in message.get_body(("plain",)).get_content()


def test_the_check_catches_a_room(mail_app):
    message = EmailMessage()
    message["To"] = "maria.w@example.org"
    message.set_content(f"Join: https://{ROOM_HOST}/abc and also secret-room-42")
    with mail_app.app_context():
        found = problems(
            message, "maria.w@example.org", ["maria.w@example.org"], ["secret-room-42"]
        )
        alone = problems(message, "maria.w@example.org", ["maria.w@example.org"])
    assert found == alone == ["text/plain part reveals a video room"]


def test_the_check_reads_calendar_attachments(mail_app):
    message = EmailMessage()
    message["To"] = "maria.w@example.org"
    message.set_content("See the attached invitation.")
    message.add_attachment(
        b"BEGIN:VCALENDAR\r\nSUMMARY:Detox family session\r\nEND:VCALENDAR\r\n",
        maintype="text",
        subtype="calendar",
        filename="session.ics",
    )
    with mail_app.app_context():
        found = problems(message, "maria.w@example.org", ["maria.w@example.org"])
    assert found == ["text/calendar part contains 'Detox'"]
