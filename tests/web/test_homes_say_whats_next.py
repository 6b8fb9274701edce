"""The home pages say what's next (issue 19, point 5): the family member's next session first
(with the video join link, the calendar file and the seat page), a Book button and new
readings, only under an active consent and sessions only under the scheduling scope; the
patient's planned family sessions and who is coming."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import render_template_string
from flask_login import login_user
from markupsafe import escape
from sqlalchemy import func, select

from familylink.extensions import db
from familylink.models import (
    AppointmentAttendee,
    AppointmentFamily,
    Assignment,
    AuditEvent,
    ConsentRecord,
    LearningModule,
    ModuleProgress,
    ModuleTranslation,
    Role,
    SeatStatus,
    User,
)
from familylink.services import consent, learning
from tests.booking_setup import (
    add_appointment,
    add_family,
    create_clinic,
    create_session_types,
    family_seat,
)
from tests.conftest import AuthActions
from tests.factories import create_consent, create_user
from tests.moments import NOON

TOMORROW = NOON + timedelta(days=1)
LATER = NOON + timedelta(days=8)


@pytest.fixture
def settings_override():
    return {"NOW_OVERRIDE": NOON}


def _page(app, email: str, path: str) -> str:
    client = app.test_client()
    AuthActions(client, app).login(email)
    response = client.get(path)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _clinic(app, *, scopes=("scheduling",), mode_video=False):
    """A clinic whose family member has a session tomorrow and another next week."""
    with app.app_context():
        clinic = create_clinic(scopes=scopes)
        clinic.family.email = "maria@example.org"
        kind = clinic.group if mode_video else clinic.private
        first = family_seat(clinic, TOMORROW, booked_at=NOON, session_type=kind)
        family_seat(clinic, LATER, booked_at=NOON)
        db.session.commit()
        return {
            "seat": first.id,
            "token": first.appointment.join_token,
            "patient": clinic.patient.id,
            "family": clinic.family.id,
            "therapist": clinic.therapist.id,
        }


def test_the_next_session_comes_first_with_where_calendar_and_seat_links(app):
    ids = _clinic(app)
    page = _page(app, "maria@example.org", "/family/")
    assert page.index("Your next session") < page.index("People you support")
    assert "Thursday, November 19, 2026" in page.split("Also coming up")[0]
    assert "Room 2" in page
    assert f"/booking/{ids['seat']}/calendar.ics" in page
    assert f'href="/booking/{ids["seat"]}"' in page
    assert '<a class="button" href="/booking/">' in page  # whom to book for is chosen there


def test_each_session_says_what_it_is_with_whom_for_whom_and_how_long(app):
    _clinic(app, mode_video=True)
    page = _page(app, "maria@example.org", "/family/")
    shown, later = page.split("Also coming up")
    assert "<strong>Group session</strong> with Dr. Grace Lee, for Jordan" in shown
    assert "(90 minutes)" in shown and "Where:" not in shown
    assert "Thursday, November 26, 2026" in later.split("People you support")[0]
    assert "</a> · Jordan</li>" in later


def test_each_time_is_in_the_members_own_zone_as_the_plain_filter_writes_it(app):
    """Each time on the home reads as the `local` filter writes it for the signed-in member:
    in their own zone, here a zone other than the program's."""
    ids = _clinic(app)
    with app.app_context():
        member = db.session.get(User, ids["family"])
        member.timezone = "America/Los_Angeles"
        db.session.commit()
    page = _page(app, "maria@example.org", "/family/")
    with app.test_request_context():
        login_user(db.session.get(User, ids["family"]))
        plain = [render_template_string("{{ t|local }}", t=moment) for moment in (TOMORROW, LATER)]
    assert plain[0].endswith("9:00 AM PST")  # not the program's zone (Eastern)
    next_session, later = page.split("Also coming up")
    assert f"When: {plain[0]} (" in next_session
    assert f">{plain[1]}</a> · Jordan</li>" in later


def test_a_video_session_shows_its_join_link(app):
    ids = _clinic(app, mode_video=True)
    page = _page(app, "maria@example.org", "/family/")
    assert f"/join/{ids['token']}" in page


def test_without_the_scheduling_scope_no_session_and_no_book_button(app):
    ids = _clinic(app, scopes=("attendance",))
    page = _page(app, "maria@example.org", "/family/")
    assert "Jordan" in page  # the patient is still shown, with what they share
    assert "Your next session" not in page
    assert f"/booking/{ids['seat']}" not in page and 'class="button" href="/booking/"' not in page


def test_after_revocation_nothing_about_the_session(app):
    ids = _clinic(app)
    with app.app_context():
        patient = db.session.get(User, ids["patient"])
        record = db.session.scalar(
            select(ConsentRecord.id).where(ConsentRecord.patient_id == patient.id)
        )
        consent.revoke_consent(patient, record, now=NOON - timedelta(hours=1))
        db.session.commit()
    page = _page(app, "maria@example.org", "/family/")
    assert "Your next session" not in page and "Jordan" not in page
    assert f"/booking/{ids['seat']}" not in page and f"/join/{ids['token']}" not in page


def test_a_cancelled_seat_is_not_the_next_session(app):
    ids = _clinic(app)
    with app.app_context():
        db.session.get(AppointmentFamily, ids["seat"]).status = SeatStatus.CANCELLED
        db.session.commit()
    page = _page(app, "maria@example.org", "/family/")
    assert "Thursday, November 26, 2026" in page.split("People you support")[0]
    assert "November 19" not in page


def _daily_seats(app, count: int, *, locale: str = "en") -> None:
    """The family member's seats on `count` days from tomorrow."""
    with app.app_context():
        clinic = create_clinic()
        clinic.family.email = "maria@example.org"
        clinic.family.locale = locale
        for day in range(count):
            family_seat(clinic, TOMORROW + timedelta(days=day), booked_at=NOON)
        db.session.commit()


def _also_coming_up(page: str) -> str:
    return page.split("Also coming up")[1].split("People you support")[0]


def test_also_coming_up_lists_five_and_says_how_many_more_the_booking_list_has(app):
    _daily_seats(app, 8)
    later = _also_coming_up(_page(app, "maria@example.org", "/family/"))
    assert later.count('<li><a href="/booking/') == 5
    assert "Tuesday, November 24, 2026" in later  # the sixth session
    assert "Wednesday, November 25, 2026" not in later
    assert '<a href="/booking/">2 more sessions: see all your sessions</a>' in later


def test_also_coming_up_has_no_more_link_when_it_lists_them_all(app):
    _daily_seats(app, 6)
    later = _also_coming_up(_page(app, "maria@example.org", "/family/"))
    assert later.count('<li><a href="/booking/') == 5
    assert '<a href="/booking/">' not in later and "see all your sessions" not in later


def test_how_many_more_is_said_in_spanish(app):
    _daily_seats(app, 9, locale="es")
    page = _page(app, "maria@example.org", "/family/")
    assert '<a href="/booking/">3 sesiones más: ver todas sus sesiones</a>' in page


def test_the_scopes_are_said_in_plain_words(app):
    _clinic(app, scopes=("scheduling", "attendance"))
    page = _page(app, "maria@example.org", "/family/")
    assert "Family session times: they can see and book" in page
    assert "Attendance: they can see whether I came" in page


def _assign(app, ids, *, opened: bool) -> str:
    with app.app_context():
        learning.load_modules(now=NOON)
        module = db.session.scalar(select(LearningModule).order_by(LearningModule.id))
        reading = {
            "family_user_id": ids["family"],
            "patient_id": ids["patient"],
            "module_id": module.id,
        }
        db.session.add(
            Assignment(
                **reading, assigned_by_id=ids["therapist"], release_at=NOON, released_at=NOON
            )
        )
        if opened:
            db.session.add(ModuleProgress(**reading, opened_at=NOON))
        db.session.commit()
        return module.title


def test_a_released_reading_not_yet_opened_is_new(app):
    ids = _clinic(app)
    title = _assign(app, ids, opened=False)
    page = _page(app, "maria@example.org", "/family/")
    assert "New readings for you" in page and str(escape(title)) in page


def test_a_new_reading_links_to_its_page_about_the_patient(app):
    ids = _clinic(app)
    _assign(app, ids, opened=False)
    with app.app_context():
        module = db.session.scalar(select(LearningModule).order_by(LearningModule.id))
        link = f'href="/learn/modules/{module.slug}?patient={ids["patient"]}"'
        minutes = f"({module.reading_minutes} min read)"
    page = _page(app, "maria@example.org", "/family/")
    assert link in page and minutes in page


def test_a_new_reading_is_titled_in_the_readers_language(app):
    ids = _clinic(app)
    _assign(app, ids, opened=False)
    with app.app_context():
        module = db.session.scalar(select(LearningModule).order_by(LearningModule.id))
        spanish = db.session.scalar(
            select(ModuleTranslation).filter_by(module_id=module.id, language="es")
        )
        english = module.title
        db.session.get(User, ids["family"]).locale = "es"
        db.session.commit()
        spanish_title = spanish.title
    assert spanish_title != english
    page = _page(app, "maria@example.org", "/family/")
    assert str(escape(spanish_title)) in page and str(escape(english)) not in page


def test_a_reading_whose_translation_is_older_than_its_english_text_is_titled_in_english(app):
    ids = _clinic(app)
    _assign(app, ids, opened=False)
    with app.app_context():
        module = db.session.scalar(select(LearningModule).order_by(LearningModule.id))
        module.file_hash = "0" * 64  # the English file changed since the Spanish was written
        db.session.get(User, ids["family"]).locale = "es"
        db.session.commit()
        english = module.title
    page = _page(app, "maria@example.org", "/family/")
    assert str(escape(english)) in page


def test_an_opened_reading_is_no_longer_new(app):
    ids = _clinic(app)
    _assign(app, ids, opened=True)
    page = _page(app, "maria@example.org", "/family/")
    assert "New readings for you" not in page


def test_the_family_home_is_one_audited_read_per_patient(app):
    ids = _clinic(app)
    _page(app, "maria@example.org", "/family/")
    with app.app_context():
        views = db.session.scalar(
            select(func.count()).where(
                AuditEvent.action == "disclosure.viewed", AuditEvent.patient_id == ids["patient"]
            )
        )
    assert views == 1


def test_the_patient_sees_planned_sessions_and_who_is_coming(app):
    with app.app_context():
        clinic = create_clinic()
        clinic.patient.email = "jordan@example.org"
        brother = add_family(clinic.patient, "Luis Rivera")
        seat = family_seat(clinic, TOMORROW, booked_at=NOON)
        db.session.add(AppointmentAttendee(seat_id=seat.id, user_id=brother.id, added_at=NOON))
        stranger = create_user(Role.FAMILY, name="Sam Stranger")
        other = create_user(Role.PATIENT, therapist=clinic.therapist)
        add_appointment(
            clinic.therapist, other, stranger, clinic.private, starts_at=LATER, booked_at=NOON
        )
        db.session.commit()
    page = _page(app, "jordan@example.org", "/patient/")
    planned = page.split("Family sessions planned for you")[1]
    assert "Thursday, November 19, 2026" in planned
    assert "Maria Rivera" in planned and "Luis Rivera" in planned
    assert "Sam Stranger" not in page


@pytest.mark.parametrize("path", ["/patient/", "/patient/sessions"])
def test_a_member_whose_consent_expired_is_not_coming_before_the_sweep(app, path):
    """Expiry takes effect at once: before the sweep closes the consent and takes them off
    the seat, the patient's pages no longer list them as coming (as the member's own home,
    the join link and the therapist's calendar already treat them as gone)."""
    with app.app_context():
        therapist = create_user(Role.THERAPIST, name="Dr. Grace Lee")
        patient = create_user(
            Role.PATIENT, name="Jordan Rivera", therapist=therapist, email="jordan@example.org"
        )
        maria = create_user(Role.FAMILY, name="Maria Rivera", email="maria@example.org")
        create_consent(patient, maria, expires_at=NOON - timedelta(hours=1))
        luis = add_family(patient, "Luis Rivera")
        private = create_session_types()[0]
        seat = add_appointment(
            therapist, patient, maria, private, starts_at=TOMORROW, booked_at=NOON
        )
        db.session.add(AppointmentAttendee(seat_id=seat.id, user_id=luis.id, added_at=NOON))
        db.session.commit()
    assert "Your next session" not in _page(app, "maria@example.org", "/family/")
    page = _page(app, "jordan@example.org", path)
    coming = page.split("Coming:")[1].split("</")[0]
    assert "Luis Rivera" in coming
    assert "Maria Rivera" not in coming


def test_a_cancelled_session_is_not_planned_for_the_patient(app):
    with app.app_context():
        clinic = create_clinic()
        clinic.patient.email = "jordan@example.org"
        seat = family_seat(clinic, TOMORROW, booked_at=NOON)
        seat.status = SeatStatus.CANCELLED
        db.session.commit()
    page = _page(app, "jordan@example.org", "/patient/")
    assert "November 19" not in page
    assert "No family sessions are planned yet." in page


def _therapist_page(app) -> str:
    client = app.test_client()
    AuthActions(client, app).login("grace@example.org")
    response = client.get("/therapist/")
    assert response.status_code == 200
    return response.get_data(as_text=True)


@pytest.fixture
def therapist_week(app):
    """On Wednesday NOON: a session at 3 PM today, one on Friday, one next week; Maria
    (scheduling, booked) and Luis (scheduling, ending in 10 days, nothing booked)."""
    with app.app_context():
        clinic = create_clinic()
        clinic.therapist.email = "grace@example.org"
        luis = create_user(Role.FAMILY, name="Luis Rivera")
        create_consent(clinic.patient, luis, expires_at=NOON + timedelta(days=10))
        for starts in (NOON + timedelta(hours=3), NOON + timedelta(days=2), LATER):
            family_seat(clinic, starts, booked_at=NOON)
        db.session.commit()


def test_the_therapist_home_counts_today_and_this_week(app, therapist_week):
    page = _therapist_page(app)
    assert "Today: 1 session" in page and "This week: 2 sessions" in page
    assert "3:00 PM" in page


def test_the_therapist_home_lists_consents_ending_within_14_days(app, therapist_week):
    ending = _therapist_page(app).split("Consents ending within 14 days")[1]
    assert "Luis Rivera, for Jordan Rivera: ends" in ending
    assert "Maria Rivera" not in ending.split("</section>")[0]


def test_the_therapist_home_lists_families_linked_but_not_booked(app, therapist_week):
    waiting = _therapist_page(app).split("Families linked but not booked")[1]
    waiting = waiting.split("</section>")[0]
    assert "Luis Rivera, for Jordan Rivera" in waiting and "Maria Rivera" not in waiting
