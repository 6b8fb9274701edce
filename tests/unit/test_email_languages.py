"""Every email kind speaks its recipient's language: Spanish subject, text, HTML and calendar
file for a Spanish reader, still nothing clinical (the Spanish deny-list), and no English that
skipped gettext (the pseudo-locale). The kinds and their realistic contexts are those of the
privacy test, so a new kind is covered here too.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask_babel import force_locale, gettext

from familylink import i18n
from familylink.extensions import db
from familylink.services import mail, reminders
from familylink.services.booking.rooms import room_name
from familylink.services.calendar.ics import ics_attachment
from tests.conftest import untranslated_words
from tests.moments import NOON
from tests.unit import test_email_privacy as privacy
from tests.unit.test_email_privacy import CASES, LINK, PATIENT_SURNAME, Case, problems

people = privacy.people  # the privacy test's world: the same people, sessions and consent

KINDS = mail.KINDS


def _spanish(people, case: Case) -> Case:
    """The case addressed to a Spanish reader: their account's setting, or the language the
    caller passes for an address with no account."""
    if not isinstance(case.to, str):
        case.to.locale = "es"
    if case.attachment is not None:  # the .ics is written for its recipient, as callers do
        appointment = people.group
        cancelled = case.attachment.filename == "cancel.ics"
        case.attachment = ics_attachment(appointment, case.to, now=NOON, cancelled=cancelled)
    return case


def _deliver(kind, people, smtp_server, now, *, language="es"):
    for person in (people.patient, people.family, people.therapist, people.admin):
        person.locale = language
    case = CASES[kind](people)
    if language == "es":
        case = _spanish(people, case)
    locale = language if isinstance(case.to, str) else None
    envelope, message = privacy.deliver(kind, case, smtp_server, now, locale=locale)
    return case, envelope, message


def test_every_email_kind_is_covered():
    assert set(KINDS) <= set(CASES)


@pytest.mark.parametrize("kind", KINDS)
def test_an_email_in_spanish_reveals_nothing_clinical(kind, people, mail_app, smtp_server, now):
    case, envelope, message = _deliver(kind, people, smtp_server, now)
    address = case.to if isinstance(case.to, str) else case.to.email
    rooms = [people.session.room_token, people.group.room_token]
    rooms += [room_name(people.session), room_name(people.group)]
    assert problems(message, address, envelope.rcpt_tos, rooms) == []


@pytest.mark.parametrize("kind", KINDS)
def test_an_email_to_a_spanish_reader_is_in_spanish(kind, people, mail_app, smtp_server, now):
    _, _, message = _deliver(kind, people, smtp_server, now)
    subject = mail_app.jinja_env.get_template(f"email/{kind}.subject.txt")
    with mail_app.test_request_context(), force_locale("es"):
        spanish_subject = subject.render().strip()
    with mail_app.test_request_context(), force_locale("en"):
        english_subject = subject.render().strip()
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert spanish_subject != english_subject
    assert message["Subject"] == spanish_subject
    assert text.startswith("Hola") and "Hello" not in text
    assert '<html lang="es">' in html and "Recibe este correo" in html


@pytest.mark.parametrize("kind", ["booking_confirmed", "booking_rescheduled", "booking_cancelled"])
def test_the_calendar_file_of_a_spanish_reader_is_in_spanish(
    kind, people, mail_app, smtp_server, now
):
    _, _, message = _deliver(kind, people, smtp_server, now)
    (calendar,) = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    content = calendar.get_content()
    if isinstance(content, bytes):
        content = content.decode()
    unfolded = content.replace("\r\n ", "")
    assert "SUMMARY:Sesión de grupo con Grace Lee" in unfolded, unfolded
    assert "hora de Nueva York" in unfolded


def test_an_english_reader_still_gets_english(people, mail_app, smtp_server, now):
    _, _, message = _deliver("booking_confirmed", people, smtp_server, now, language="en")
    assert message["Subject"] == "Your appointment is confirmed"
    assert "When: Sunday, November 22, 2026, 12:00 PM to 1:30 PM EST" in (
        message.get_body(("plain",)).get_content()
    )


@pytest.mark.parametrize("kind", KINDS)
def test_no_email_has_english_that_skipped_gettext(kind, people, mail_app):
    data = [
        "Maria",
        "Jordan",
        "Luis",
        "Grace Lee",
        "Alex Morgan",
        PATIENT_SURNAME,
        "Mother",
        "Room 2",
        mail_app.config["MAIL_DEFAULT_SENDER"],
        "Riverside Family Sessions",
        "America/New_York",
        "Eastern Time",  # Babel names the zone, as it names days and months
        LINK,
    ]
    with mail_app.app_context(), force_locale(i18n.PSEUDO_LOCALE):
        case = CASES[kind](people)  # as the reminder sweep, its words in the reader's language
        email = mail.Queued(kind, case.to, f"pseudo:{kind}", context=case.context)
        row = mail._row(email, NOON, mail._Templates(), mail.get_program())
    links = [w for w in row["text_body"].split() if "://" in w]
    assert untranslated_words(row["subject"]) == []
    assert untranslated_words(row["html_body"], *data, *links) == []
    assert untranslated_words(row["text_body"], *data, *links) == []


def test_a_spanish_family_members_reminder_arrives_in_spanish(people, mail_app, smtp_server):
    """Through the sweep and a real SMTP conversation, beside an English patient's."""
    people.family.locale = "es"
    db.session.commit()
    moment = people.session.starts_at - timedelta(hours=48)
    assert reminders.run_sweep(moment) == 2
    mail.send_pending(now=moment)
    by_address = {m["To"]: m for m in smtp_server.parsed()}
    spanish = by_address[people.family.email]
    english = by_address[people.patient.email]
    assert spanish["Subject"] == "Recordatorio de su cita"
    body = spanish.get_body(("plain",)).get_content()
    assert "Le recordamos su próxima cita." in body
    assert "Sesión familiar con Grace Lee" in body
    assert "sábado, 21 de noviembre de 2026, 12:00 a 12:50 (hora de Nueva York)" in body
    assert english["Subject"] == "Your appointment reminder"


def test_later_words_are_written_once_per_language_they_are_shown_in(mail_app):
    # An email prints its title several times (subject, text, HTML, the key that groups
    # emails rendered alike): the words are written once per language, and again in another.
    written = []

    def title() -> str:
        written.append(1)
        return gettext("Your appointment is confirmed")

    words = i18n.Later(title)
    with mail_app.test_request_context():
        with force_locale("en"):
            shown = {str(words), str(words), f"{words}"}
            assert bool(words) and hash(words) == hash("Your appointment is confirmed")
        with force_locale("es"):
            spanish = str(words)
            assert str(words) == spanish
    assert shown == {"Your appointment is confirmed"} and spanish != "Your appointment is confirmed"
    assert len(written) == 2
