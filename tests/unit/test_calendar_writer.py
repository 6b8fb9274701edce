"""The calendar writer writes the bytes the icalendar library wrote for the same file: its
property order, TEXT escaping, parameter quoting and folding, on generated texts, and every
file FamilyLink sends (`appointment_ics`, `feed_ics`) against the library's build of it."""

from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from zoneinfo import ZoneInfo

import pytest
from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from icalendar import Calendar, Event, vCalAddress

from familylink.i18n import normalise
from familylink.models import SessionMode
from familylink.services.calendar import ics, writer
from familylink.services.program import get_program
from familylink.services.screening import safe_sender_name
from familylink.services.timefmt import format_span
from tests.unit import test_calendar_files as calendar_files

# Texts that exercise every rule: escapes, quotes, carets, line breaks, letters of two to
# four octets (folding must not split one, nor an escape).
TRICKY = st.sampled_from(list("\\;,:\"'’^\n\r éñ–中😀aZ0 ") + ["\r\n", r"\N", "\\n"])
TEXT = st.lists(
    st.one_of(TRICKY, st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"))),
    max_size=120,
).map("".join)
INSTANT = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
)


def _library_event(values: dict) -> Event:
    event = Event()
    event.add("uid", values["uid"])
    event.add("dtstamp", values["now"])
    event.add("dtstart", values["starts"])
    event.add("dtend", values["ends"])
    event.add("sequence", values["sequence"])
    organizer = vCalAddress(f"mailto:{values['address']}")
    organizer.params["CN"] = values["cn"]
    event.add("organizer", organizer)
    event.add("summary", values["summary"])
    if values["location"]:
        event.add("location", values["location"])
    event.add("description", values["description"])
    event.add("status", values["status"])
    return event


def _library_file(method: str, events: list[dict]) -> bytes:
    cal = Calendar()
    cal.add("prodid", ics.PRODID)
    cal.add("version", "2.0")
    cal.add("method", method)
    for values in events:
        cal.add_component(_library_event(values))
    return cal.to_ical()


def _written_event(values: dict) -> list:
    event = [
        ("UID", writer.text(values["uid"])),
        ("DTSTAMP", writer.utc(values["now"])),
        ("DTSTART", writer.utc(values["starts"])),
        ("DTEND", writer.utc(values["ends"])),
        ("SEQUENCE", str(values["sequence"])),
        ("ORGANIZER", *writer.organizer(values["cn"], values["address"])),
        ("SUMMARY", writer.text(values["summary"])),
        ("DESCRIPTION", writer.text(values["description"])),
        ("STATUS", values["status"]),
    ]
    if values["location"]:
        event.append(("LOCATION", writer.text(values["location"])))
    return event


EVENT = st.fixed_dictionaries(
    {
        "uid": TEXT.filter(bool),
        "now": INSTANT,
        "starts": INSTANT,
        "ends": INSTANT,
        "sequence": st.integers(0, 10_000),
        "cn": TEXT.filter(bool),
        "address": st.sampled_from(["noreply@example.org", "a.b+c@sub.example.org"]),
        "summary": TEXT,
        "location": TEXT,
        "description": TEXT,
        "status": st.sampled_from(["CONFIRMED", "CANCELLED"]),
    }
)


@settings(max_examples=150, deadline=None)
@given(method=st.sampled_from(["REQUEST", "CANCEL", "PUBLISH"]), events=st.lists(EVENT, max_size=3))
def test_the_writer_writes_the_librarys_bytes(method, events):
    written = writer.calendar(
        [("PRODID", writer.text(ics.PRODID)), ("VERSION", "2.0"), ("METHOD", method)],
        [_written_event(values) for values in events],
    )
    assert written == _library_file(method, events)


@pytest.mark.parametrize("length", range(60, 90))
@pytest.mark.parametrize("filler", ["a", "é", "😀", "\\", ",", "^", '"'])
def test_lines_fold_as_the_library_folds_them_at_every_length(length, filler):
    values = {
        "uid": "u@familylink",
        "now": datetime(2026, 11, 18, 17, tzinfo=UTC),
        "starts": datetime(2026, 11, 20, 15, tzinfo=UTC),
        "ends": datetime(2026, 11, 20, 15, 50, tzinfo=UTC),
        "sequence": 3,
        "cn": "Family Sessions " + filler * (length // 3),
        "address": "noreply@example.org",
        "summary": "x" * (length - 1) + filler,
        "location": filler * length,
        "description": ("ab" + filler) * (length // 2),
        "status": "CONFIRMED",
    }
    written = writer.calendar(
        [("PRODID", writer.text(ics.PRODID)), ("VERSION", "2.0"), ("METHOD", "REQUEST")],
        [_written_event(values)],
    )
    assert written == _library_file("REQUEST", [values])


def test_an_instant_that_is_not_utc_is_refused():
    with pytest.raises(ValueError):
        writer.utc(datetime(2026, 11, 20, 10, tzinfo=ZoneInfo("America/New_York")))
    with pytest.raises(ValueError):
        writer.utc(datetime(2026, 11, 20, 10))


# --- Every file FamilyLink sends, against the library's build of it (the code it replaced) ---


def _library_values(appointment, recipient, now, cancelled) -> dict:
    with force_locale(normalise(recipient.locale)):
        title = ics.neutral_title(appointment)
        local = format_span(appointment.starts_at, appointment.ends_at, recipient.timezone)
        return {
            "uid": appointment.uid,
            "now": now,
            "starts": appointment.starts_at,
            "ends": appointment.ends_at,
            "sequence": appointment.sequence,
            "cn": safe_sender_name(get_program().sender_name),
            "address": parseaddr(current_app.config["MAIL_DEFAULT_SENDER"])[1],
            "summary": title,
            # A cancellation names no place (never a video session's join link).
            "location": None if cancelled else ics.where(appointment),
            "description": _("%(title)s, %(when)s.", title=title, when=local),
            "status": "CANCELLED" if cancelled else "CONFIRMED",
        }


seat = calendar_files.seat  # a private session booked by the family member


@pytest.mark.parametrize("locale", ["en", "es", None])
@pytest.mark.parametrize("cancelled", [False, True])
@pytest.mark.parametrize("place", ["video", "Room 2, Main St; 2nd floor", ""])
@settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=TEXT.filter(str.strip), sequence=st.integers(0, 50))
def test_every_sent_file_is_the_librarys(seat, now, locale, cancelled, place, name, sequence):
    appointment = seat.appointment
    recipient = seat.present_attendees[0].user
    recipient.locale = locale
    appointment.therapist.name = name
    appointment.sequence = sequence
    appointment.session_type.mode = SessionMode.VIDEO if place == "video" else SessionMode.IN_PERSON
    appointment.session_type.location = None if place == "video" else place
    appointment.join_token = "join-token-1" if place == "video" else None
    stamp = now + timedelta(microseconds=123456)  # a request's clock has them; files do not
    written = ics.appointment_ics(appointment, recipient, now=stamp, cancelled=cancelled)
    method = "CANCEL" if cancelled else "REQUEST"
    assert written == _library_file(
        method, [_library_values(appointment, recipient, stamp, cancelled)]
    )
    feed = ics.feed_ics([appointment, appointment], recipient, now=stamp)
    published = _library_values(appointment, recipient, stamp, False)
    assert feed == _library_file("PUBLISH", [published, published])
