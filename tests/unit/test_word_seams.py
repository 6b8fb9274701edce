"""Small wording seams of emails: a greeting with no name to give, and the reminder's time
zone in words."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import OutboxEmail
from familylink.services import mail, reminders
from tests.unit import test_email_privacy as privacy
from tests.unit.test_email_privacy import CASES

people = privacy.people  # the privacy test's world: the same people, sessions and consent


def _nameless(case):
    """The case with its recipient's name left empty (spaces alone, where it is an account's
    name: they have no first word either)."""
    if not isinstance(case.to, str):
        case.to.name = "   "
    for key in ("recipient_name", "name"):
        if key in case.context:
            case.context[key] = ""
    return case


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("kind", mail.KINDS)
def test_an_email_to_someone_without_a_name_greets_them_cleanly(kind, language, people, now):
    for person in (people.patient, people.family, people.therapist, people.admin):
        person.locale = language
    case = _nameless(CASES[kind](people))
    row = mail.queue_email(
        kind,
        to=case.to,
        dedupe_key=f"nameless:{kind}",
        now=now,
        context=case.context,
        locale=language if isinstance(case.to, str) else None,
    )
    for body in (row.text_body, row.html_body):
        assert "Hello ," not in body and "Hello  " not in body and "\x00" not in body
        assert "Hola, :" not in body and "Hola,  " not in body
    first_line = row.text_body.splitlines()[0]
    assert first_line in {"Hello,", "Hola:"}, first_line


def test_a_sweep_greets_a_nameless_person_cleanly_beside_a_named_one(people, now):
    """The sweep renders once for everyone with a marker for the first name: an empty name
    must not turn the shared "Hello Maria," into "Hello ,"."""
    people.family.name = ""
    db.session.commit()
    moment = people.session.starts_at - timedelta(hours=48)
    assert reminders.run_sweep(moment) == 2
    bodies = {row.to_address: row.text_body for row in reminders_queued()}
    assert bodies[people.family.email].startswith("Hello,\n")
    assert bodies[people.patient.email].startswith("Hello Jordan,\n")


def reminders_queued():
    return db.session.scalars(select(OutboxEmail).where(OutboxEmail.kind == "reminder")).all()


def test_a_reminder_names_the_time_zone_in_words_in_each_language(people):
    """Not the IANA key ("America/New_York"): Spanish readers read the zone's own Spanish."""
    people.family.locale = "es"
    db.session.commit()
    assert reminders.run_sweep(people.session.starts_at - timedelta(hours=48)) == 2
    bodies = {row.to_address: (row.text_body, row.html_body) for row in reminders_queued()}
    for body in bodies[people.patient.email]:
        assert "times are in Eastern Time)" in body
        assert "America/New_York" not in body and "New York" not in body
    for body in bodies[people.family.email]:
        assert "; horario de Nueva York)" in body
        assert "America/New_York" not in body


@pytest.mark.parametrize(
    ("name", "first"),
    [
        ("Maria José Ruiz", "Maria"),
        ("  Ana  ", "Ana"),
        ("   ", ""),
        ("", ""),
        (None, ""),
        # A title is not what anyone is called by ("Hello Dr.,"), unless it is all there is.
        ("Dr. Grace Lee", "Grace"),
        ("dra Ana Ruiz", "Ana"),
        ("Mx. Sam", "Sam"),
        ("Dr.", "Dr."),
        ("Drew Barry", "Drew"),
    ],
)
def test_a_person_is_called_by_the_first_word_of_their_name_or_nothing(name, first):
    from familylink.i18n import first_word
    from familylink.models import User

    assert first_word(name) == first
    assert User(name=name).first_name == first


def test_no_template_takes_a_first_name_apart_itself():
    # `first_word` is the one rule; `.split()[0]` fails on a name of spaces alone.
    from familylink.i18n import PROJECT_ROOT

    found = [
        path.name
        for path in (PROJECT_ROOT / "templates").rglob("*.*")
        if ".split()[0]" in path.read_text(encoding="utf-8")
    ]
    assert found == []
