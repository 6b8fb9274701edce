"""Booking, video rooms and the therapist's pages in every language: each page rendered under
the pseudo-locale shows no English that skipped gettext, and the family's week picker and
confirmation page read in Spanish for a family member who chose it."""

import re
from datetime import time, timedelta

import pytest
from sqlalchemy import select, update

from familylink import i18n
from familylink.extensions import db
from familylink.models import (
    Appointment,
    AppointmentFamily,
    AvailabilityOverride,
    Role,
    SessionType,
    User,
    WaitlistEntry,
    WaitlistStatus,
)
from familylink.services import progress_updates
from tests.booking_setup import add_appointment, add_family
from tests.factories import create_user
from tests.moments import NOON

# What the test world puts on the pages as data: names, titles, places, zones, addresses.
DATA = (
    "Dr. Grace Lee",
    "Jordan Rivera",
    "Maria Rivera",
    "Sam Rivera",
    "Jordan",
    "Maria",
    "Family session",
    "Multi-family group",
    "Couples talk",
    "Room 2",
    "America/New York",
    "America/New_York",
    "New York",
    "taking turns to talk",
    "http://familylink.test",
    "Rivera",
    "FamilyLink",
    # The shared form macro's summary (templates/_macros, translated with the layout).
    "Please check the field marked below.",
    "Please check the fields marked below.",
)
DRAFT = (
    "What we worked on: taking turns to talk.\n\n"
    "How the family can help this week: a short walk.\n\n"
    "What is next: one calm talk."
)


@pytest.fixture
def settings_override():
    return {"NOW_OVERRIDE": NOON}


@pytest.fixture
def world(app, clinic):
    """The clinic with a second private type, Maria's session in two days, a video group
    she waits for (a place held), time off, an update drafted and a weekly series."""
    with app.app_context():
        therapist = db.session.get(User, clinic["therapist_id"])
        patient = db.session.get(User, clinic["patient"])
        family = db.session.get(User, clinic["family_id"])
        private = db.session.get(SessionType, clinic["private"])
        group_type = db.session.get(SessionType, clinic["group"])
        db.session.add(SessionType(name="Couples talk", duration_minutes=30, capacity=1))
        seat = add_appointment(
            therapist, patient, family, private, starts_at=NOON + timedelta(days=2), booked_at=NOON
        )
        group = add_appointment(
            therapist,
            patient,
            create_user(Role.FAMILY),
            group_type,
            starts_at=NOON + timedelta(days=3),
            booked_at=NOON,
        ).appointment
        group.capacity = 1
        video = add_appointment(
            therapist,
            patient,
            family,
            group_type,
            starts_at=NOON + timedelta(days=1),
            booked_at=NOON,
        ).appointment
        entry = WaitlistEntry(
            appointment_id=group.id,
            patient_id=patient.id,
            family_user_id=family.id,
            created_at=NOON - timedelta(hours=3),
            status=WaitlistStatus.OFFERED,
            offered_until=NOON + timedelta(days=1),
        )
        db.session.add(entry)
        db.session.add(
            AvailabilityOverride(
                therapist_id=therapist.id, day=NOON.date() + timedelta(days=9), off=True
            )
        )
        add_family(patient, "Sam Rivera", scopes=("scheduling", "progress"))
        draft = progress_updates.draft_update(
            therapist, patient.id, text=DRAFT, family_user_id=None, now=NOON
        )
        db.session.commit()
        return {
            **clinic,
            "seat": seat.id,
            "group_appointment": group.id,
            "entry": entry.id,
            "update": draft.id,
            "video": video.id,
            "token": video.join_token,
        }


SERIES_FIRST = (NOON + timedelta(days=6)).replace(hour=15, minute=0)


def _series_form(world) -> dict:
    """The therapist's "book four weeks for Maria" form, before confirming."""
    return {
        "session_type": world["private"],
        "slot": SERIES_FIRST.strftime("%Y-%m-%dT%H:%MZ"),
        "weeks": "4",
        "attendees": [world["family_id"]],
    }


def _series_seat(app, client, world) -> int:
    """Book four weeks for Maria from the therapist's page; the first week's seat."""
    data = {**_series_form(world), "confirmed": "1"}
    client.post("/therapist/book", query_string={"patient": world["patient"]}, data=data)
    with app.app_context():
        return db.session.scalar(
            select(AppointmentFamily.id)
            .join(AppointmentFamily.appointment)
            .where(Appointment.weekly_series_id.is_not(None))
            .order_by(Appointment.starts_at)
        )


def _untranslated(pseudo_locale, response, *extra) -> list[str]:
    """Words of this area's part of the page (its title and main content; the header and
    footer belong to the layout) that skipped gettext."""
    assert response.status_code < 500
    page = response.get_data(as_text=True)
    title = re.search(r"<title>.*?</title>", page, re.S).group(0)
    main = re.search(r"<main.*?</main>", page, re.S).group(0)
    found = pseudo_locale(title + main, *DATA, *extra)
    print("UNTRANSLATED", found)
    return found


def _first_slot(page: str) -> str:
    return re.findall(r'type="radio" name="slot" id="[^"]*" value="([^"]+)"', page)[0]


# --- Under the pseudo-locale: nothing skips gettext -------------------------------------


def test_family_booking_pages_are_all_translatable(app, client, auth, world, pseudo_locale):
    auth.login(world["family"])
    patient = world["patient"]
    chooser = client.get(f"/booking/new?patient={patient}")
    assert _untranslated(pseudo_locale, chooser) == []
    picker_url = f"/booking/new?patient={patient}&type={world['private']}"
    picker = client.get(picker_url)
    assert _untranslated(pseudo_locale, picker) == []
    refused = client.post(picker_url, data={"slot": ""})
    assert _untranslated(pseudo_locale, refused) == []
    odd_week = client.get(picker_url + "&week=1999-01-01")
    assert _untranslated(pseudo_locale, odd_week) == []
    slot = _first_slot(picker.get_data(as_text=True))
    confirm = client.post(picker_url, data={"slot": slot, "note": "See you"})
    assert _untranslated(pseudo_locale, confirm, "See you") == []
    pages = [
        "/booking/",
        f"/booking/{world['seat']}",
        f"/booking/{world['seat']}?booked=1",
        f"/booking/groups?patient={patient}",
        f"/booking/claim/{world['entry']}",
        "/booking/feed",
    ]
    for path in pages:
        assert _untranslated(pseudo_locale, client.get(path)) == [], path


def test_family_flashes_and_refusals_are_translatable(app, client, auth, world, pseudo_locale):
    auth.login(world["family"])
    seat = world["seat"]
    moved = client.post(
        f"/booking/{seat}/reschedule", data={"slot": "nonsense"}, follow_redirects=True
    )
    assert _untranslated(pseudo_locale, moved) == []
    feed_on = client.post("/booking/feed", data={"action": "on"})
    link = re.search(r"<code>([^<]+)</code>", feed_on.get_data(as_text=True)).group(1)
    assert _untranslated(pseudo_locale, feed_on, link) == []
    feed_off = client.post("/booking/feed", data={"action": "off"}, follow_redirects=True)
    assert _untranslated(pseudo_locale, feed_off) == []
    cancelled = client.post(f"/booking/{seat}/cancel", follow_redirects=True)
    assert _untranslated(pseudo_locale, cancelled) == []


def test_the_video_room_pages_are_translatable(app, client, auth, world, pseudo_locale):
    auth.login(world["family"])
    too_early = client.get(f"/join/{world['token']}")
    assert _untranslated(pseudo_locale, too_early) == []
    auth.logout()
    auth.login(world["therapist"])
    room = client.get(f"/therapist/appointments/{world['video']}/room")
    assert _untranslated(pseudo_locale, room) == []
    refused = client.post(
        f"/therapist/appointments/{world['video']}/room",
        data={"room_link": "ftp://nowhere"},
    )
    assert _untranslated(pseudo_locale, refused, "ftp://nowhere") == []


def test_the_therapist_calendar_and_booking_pages_are_translatable(
    app, client, auth, world, pseudo_locale
):
    auth.login(world["therapist"])
    patient, seat = world["patient"], world["seat"]
    pages = [
        "/therapist/calendar?date=2026-11-16",
        "/therapist/calendar?date=2026-11-20&view=day",
        "/therapist/calendar?date=2026-12-28",
        "/therapist/book",
        f"/therapist/book?patient={patient}",
        f"/therapist/seats/{seat}/reschedule",
        f"/therapist/seats/{seat}/cancel",
        f"/therapist/seats/{seat}/move-future",
    ]
    for path in pages:
        assert _untranslated(pseudo_locale, client.get(path)) == [], path
    refusals = [
        (f"/therapist/book?patient={patient}", {"slot": ""}),
        (f"/therapist/seats/{seat}/reschedule", {"slot": "nonsense"}),
        (f"/therapist/seats/{seat}/cancel", {}),
    ]
    for path, data in refusals:
        assert _untranslated(pseudo_locale, client.post(path, data=data)) == [], path


def test_the_series_pages_are_translatable(app, client, auth, world, pseudo_locale):
    auth.login(world["therapist"])
    data = _series_form(world)
    plan = client.post("/therapist/book", query_string={"patient": world["patient"]}, data=data)
    assert _untranslated(pseudo_locale, plan) == []
    seat = _series_seat(app, client, world)
    booked = client.get("/therapist/calendar?date=2026-11-23")
    assert _untranslated(pseudo_locale, booked) == []
    for path in (
        f"/therapist/seats/{seat}/cancel?future=1",
        f"/therapist/seats/{seat}/move-future",
    ):
        assert _untranslated(pseudo_locale, client.get(path)) == [], path
    later = (SERIES_FIRST + timedelta(days=1)).strftime("%Y-%m-%dT%H:%MZ")
    move = client.post(f"/therapist/seats/{seat}/move-future", data={"slot": later})
    assert _untranslated(pseudo_locale, move) == []


def test_the_therapist_own_pages_are_translatable(app, client, auth, world, pseudo_locale):
    with app.app_context():
        db.session.execute(
            update(User).where(User.id == world["patient"]).values(password_hash=None)
        )
        db.session.commit()
    auth.login(world["therapist"])
    pages = [
        "/therapist/",
        "/therapist/availability",
        "/therapist/groups",
        "/therapist/attendance",
        f"/therapist/patients/{world['patient']}/updates",
        f"/therapist/updates/{world['update']}/revise",
    ]
    for path in pages:
        assert _untranslated(pseudo_locale, client.get(path), DRAFT) == [], path
    refusals = [
        ("/therapist/patients", {"name": "", "email": ""}),
        ("/therapist/availability/windows", {"weekday": "0"}),
        ("/therapist/availability/overrides", {"day": ""}),
        ("/therapist/session-types", {"name": "", "mode": "video"}),
        ("/therapist/groups", {"first_day": ""}),
        ("/therapist/attendance", {"day": ""}),
        (f"/therapist/patients/{world['patient']}/updates", {"text": "", "recipient": ""}),
    ]
    for path, data in refusals:
        assert _untranslated(pseudo_locale, client.post(path, data=data), DRAFT) == [], path


def test_therapist_flashes_are_translatable(app, client, auth, world, pseudo_locale):
    auth.login(world["therapist"])
    window = {"weekday": "1", "start_time": "09:00", "end_time": "10:00"}
    added = client.post("/therapist/availability/windows", data=window, follow_redirects=True)
    assert _untranslated(pseudo_locale, added) == []
    group = {
        "session_type": world["group"],
        "first_day": "2026-12-01",
        "start_time": "18:00",
        "weeks": "2",
        "capacity": "4",
    }
    scheduled = client.post("/therapist/groups", data=group, follow_redirects=True)
    assert _untranslated(pseudo_locale, scheduled) == []
    enrolled = client.post(
        "/therapist/patients",
        data={"name": "Ana Lopez", "email": "ana@example.org", "episode_start": "2026-11-16"},
        follow_redirects=True,
    )
    assert _untranslated(pseudo_locale, enrolled, "Ana Lopez") == []


# --- In Spanish ------------------------------------------------------------------------


@pytest.fixture
def spanish(app, world):
    with app.app_context():
        db.session.execute(update(User).where(User.id == world["family_id"]).values(locale="es"))
        db.session.execute(delete_other_private_types(world))
        db.session.commit()
    return world


def delete_other_private_types(world):
    return update(SessionType).where(SessionType.name == "Couples talk").values(active=False)


def test_the_week_picker_speaks_spanish(client, auth, spanish):
    auth.login(spanish["family"])
    page = client.get(f"/booking/new?patient={spanish['patient']}").get_data(as_text=True)
    assert '<html lang="es">' in page
    assert "Reservar una sesión familiar para Jordan" in page
    assert "Semana del lunes, 16 de noviembre de 2026" in page
    legends = re.findall(r"<legend>([^<]+)</legend>", page)
    assert legends[0] == "miércoles, 18 de noviembre"
    assert "Continuar" in page and "Semana siguiente" in page


def test_the_confirmation_page_speaks_spanish(client, auth, spanish):
    auth.login(spanish["family"])
    url = f"/booking/new?patient={spanish['patient']}"
    slot = _first_slot(client.get(url).get_data(as_text=True))
    page = client.post(url, data={"slot": slot}).get_data(as_text=True)
    assert '<html lang="es">' in page
    assert "Revise su reserva" in page
    assert "Reservar este horario" in page
    assert "Le enviaremos por correo electrónico" in page


def test_a_refusal_speaks_spanish(client, auth, spanish):
    auth.login(spanish["family"])
    url = f"/booking/new?patient={spanish['patient']}"
    page = client.post(url, data={"slot": ""}).get_data(as_text=True)
    assert "Elija un horario." in page


def test_the_time_off_day_reads_in_spanish_for_a_spanish_therapist(app, client, auth, world):
    with app.app_context():
        db.session.execute(update(User).where(User.id == world["therapist_id"]).values(locale="es"))
        db.session.commit()
    auth.login(world["therapist"])
    page = client.get("/therapist/availability").get_data(as_text=True)
    assert "viernes, 27 de noviembre de 2026" in page
    assert "Horario semanal" in page
    assert time(9).strftime("%-I:%M") in page


# The files of this area (the consent helper's therapist pages aside).
AREA = re.compile(
    r"^(templates/(booking|rooms)/|templates/therapist/(?!family_contacts|paper_consent|revoke)"
    r"|familylink/(booking|therapist)/|familylink/services/booking/"
    r"|familylink/services/(scheduling|attendance|episodes|progress_updates|sessions)\.py)"
)


def test_every_string_of_the_area_has_spanish():
    missing = set(i18n.untranslated("es"))
    area = {
        message.id if isinstance(message.id, str) else message.id[0]
        for message in i18n.extract()
        if message.id and any(AREA.match(path) for path, _line in message.locations)
    }
    assert area and sorted(area & missing) == []
