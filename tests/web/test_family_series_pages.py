"""The family's side of weekly series: "Repeat weekly" on the booking page only when the
program allows it (a forged POST is refused otherwise), the confirmation page listing every
week (conflicts first, 409 and nothing booked while any), and "cancel this and all future"
with a confirmation page. The clock is a week before the 2026-11-01 fall-back."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from familylink.extensions import db
from familylink.models import (
    Appointment,
    AppointmentFamily,
    AppointmentSeries,
    OutboxEmail,
    Role,
    SeatStatus,
    SessionType,
    User,
)
from familylink.services.program import forget_cached_program, program_row
from tests.booking_setup import add_appointment
from tests.factories import create_consent, create_user
from tests.moments import WEEK_BEFORE_FALL_BACK

NEW_YORK = ZoneInfo("America/New_York")
FIRST = datetime(2026, 10, 27, 10, 0, tzinfo=NEW_YORK).astimezone(UTC)
SLOT = FIRST.strftime("%Y-%m-%dT%H:%MZ")


@pytest.fixture
def settings_override():
    return {"NOW_OVERRIDE": WEEK_BEFORE_FALL_BACK}


def allow_family_series(app, on: bool = True) -> None:
    with app.app_context():
        program_row().families_may_book_series = on
        db.session.commit()
        forget_cached_program()


def book_url(clinic) -> str:
    return f"/booking/new?patient={clinic['patient']}"


def series_form(**extra) -> dict:
    data = {"slot": SLOT, "weeks": "4", "note": "", "request_key": "series-key-1"}
    data.update(extra)
    return data


def count(app, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def series_seats(app) -> list[int]:
    with app.app_context():
        return list(
            db.session.scalars(
                select(AppointmentFamily.id)
                .join(AppointmentFamily.appointment)
                .where(Appointment.weekly_series_id.is_not(None))
                .order_by(Appointment.starts_at)
            )
        )


def test_while_the_setting_is_off_the_page_does_not_offer_repeat_weekly(app, client, auth, clinic):
    auth.login(clinic["family"])
    page = client.get(book_url(clinic)).get_data(as_text=True)
    assert "Repeat weekly" not in page


@pytest.mark.parametrize("confirmed", ["", "1"])
def test_a_forged_series_post_while_off_is_refused_and_changes_nothing(
    app, client, auth, clinic, confirmed
):
    auth.login(clinic["family"])
    response = client.post(book_url(clinic), data=series_form(confirmed=confirmed))
    assert response.status_code == 400
    assert "Weekly sessions are booked by your therapist." in response.get_data(as_text=True)
    assert count(app, Appointment) == count(app, OutboxEmail) == 0


def test_when_on_the_page_offers_two_to_twelve_weeks(app, client, auth, clinic):
    allow_family_series(app)
    auth.login(clinic["family"])
    page = client.get(book_url(clinic)).get_data(as_text=True)
    assert "Repeat weekly" in page
    assert '<option value="2">For 2 weeks</option>' in page
    assert '<option value="12">For 12 weeks</option>' in page
    assert '<option value="13">' not in page


def test_repeat_weekly_lists_every_week_first_and_books_nothing(app, client, auth, clinic):
    allow_family_series(app)
    auth.login(clinic["family"])
    response = client.post(book_url(clinic), data=series_form())
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Tuesday, October 27, 2026, 10:00 AM EDT" in page
    assert "Tuesday, November 17, 2026, 10:00 AM EST" in page
    assert "Book all 4 weeks" in page
    assert count(app, Appointment) == 0


def test_confirming_books_every_week_with_an_email_each(app, client, auth, clinic):
    allow_family_series(app)
    auth.login(clinic["family"])
    client.post(book_url(clinic), data=series_form())
    response = client.post(book_url(clinic), data=series_form(confirmed="1"))
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/booking/")
    assert count(app, AppointmentSeries) == 1
    assert len(series_seats(app)) == 4
    assert count(app, OutboxEmail, OutboxEmail.kind == "booking_confirmed") == 4
    # The same confirmation sent again books nothing more.
    again = client.post(book_url(clinic), data=series_form(confirmed="1"))
    assert again.status_code == 302
    assert count(app, AppointmentSeries) == 1


def test_a_conflict_is_listed_first_with_409_and_nothing_is_booked(app, client, auth, clinic):
    allow_family_series(app)
    with app.app_context():
        add_appointment(
            db.session.get(User, clinic["therapist_id"]),
            create_user(Role.PATIENT, therapist=db.session.get(User, clinic["therapist_id"])),
            create_user(Role.FAMILY),
            db.session.get(SessionType, clinic["private"]),
            starts_at=datetime(2026, 11, 10, 10, 0, tzinfo=NEW_YORK),
            booked_at=WEEK_BEFORE_FALL_BACK,
        )
    auth.login(clinic["family"])
    response = client.post(book_url(clinic), data=series_form(confirmed="1"))
    page = response.get_data(as_text=True)
    assert response.status_code == 409
    assert page.index("Your therapist is not free then.") < page.index("October 27")
    assert "Book all" not in page
    assert count(app, AppointmentSeries) == 0
    assert count(app, Appointment) == 1


def test_a_consent_ending_before_week_three_is_listed(app, client, auth, clinic):
    allow_family_series(app)
    with app.app_context():
        member = create_user(Role.FAMILY, name="Ana Rivera", email="ana@example.org")
        create_consent(
            db.session.get(User, clinic["patient"]),
            member,
            expires_at=datetime(2026, 11, 5, tzinfo=UTC),
        )
        db.session.commit()
    auth.login("ana@example.org")
    response = client.post(book_url(clinic), data=series_form(confirmed="1"))
    assert response.status_code == 409
    assert "Ana Rivera&#39;s consent ends before this date." in response.get_data(as_text=True)
    assert count(app, Appointment) == 0


@pytest.mark.parametrize("weeks", ["13", "1", "many"])
def test_a_bad_number_of_weeks_changes_nothing(app, client, auth, clinic, weeks):
    allow_family_series(app)
    auth.login(clinic["family"])
    response = client.post(book_url(clinic), data=series_form(weeks=weeks, confirmed="1"))
    assert response.status_code == 400
    assert count(app, Appointment) == 0


def _book_a_series(app, client, auth, clinic) -> list[int]:
    allow_family_series(app)
    auth.login(clinic["family"])
    client.post(book_url(clinic), data=series_form(confirmed="1"))
    return series_seats(app)


def test_a_series_week_offers_cancel_this_and_all_future(app, client, auth, clinic):
    seats = _book_a_series(app, client, auth, clinic)
    page = client.get(f"/booking/{seats[2]}").get_data(as_text=True)
    assert f"/booking/{seats[2]}/cancel-future" in page
    assert "Cancel this and all later weeks" in page


def test_cancel_this_and_all_future_asks_first_then_cancels_them(app, client, auth, clinic):
    seats = _book_a_series(app, client, auth, clinic)
    url = f"/booking/{seats[2]}/cancel-future"
    page = client.get(url).get_data(as_text=True)
    assert "Tuesday, November 10, 2026, 10:00 AM EST" in page
    assert "Tuesday, November 3, 2026" not in page
    assert "Cancel all 2 sessions" in page
    response = client.post(url)
    assert response.status_code == 302
    with app.app_context():
        statuses = [db.session.get(AppointmentFamily, s).status for s in seats]
    assert statuses == [SeatStatus.BOOKED] * 2 + [SeatStatus.CANCELLED] * 2
    assert count(app, OutboxEmail, OutboxEmail.kind == "booking_cancelled") == 2


def test_cancel_all_future_of_a_single_session_changes_nothing(app, client, auth, clinic):
    with app.app_context():
        seat = add_appointment(
            db.session.get(User, clinic["therapist_id"]),
            db.session.get(User, clinic["patient"]),
            db.session.get(User, clinic["family_id"]),
            db.session.get(SessionType, clinic["private"]),
            starts_at=FIRST,
            booked_at=WEEK_BEFORE_FALL_BACK,
        ).id
    auth.login(clinic["family"])
    assert "cancel-future" not in client.get(f"/booking/{seat}").get_data(as_text=True)
    response = client.post(f"/booking/{seat}/cancel-future")
    assert response.status_code in (303, 400)
    with app.app_context():
        assert db.session.get(AppointmentFamily, seat).status == SeatStatus.BOOKED


def test_another_family_cannot_cancel_the_series(app, client, auth, clinic):
    seats = _book_a_series(app, client, auth, clinic)
    auth.logout()
    with app.app_context():
        other = create_user(Role.FAMILY, email="other@example.org")
        create_consent(create_user(Role.PATIENT), other)
        db.session.commit()
    auth.login("other@example.org")
    assert client.get(f"/booking/{seats[0]}/cancel-future").status_code == 404
    assert client.post(f"/booking/{seats[0]}/cancel-future").status_code == 404
    assert count(app, AppointmentFamily, AppointmentFamily.status == SeatStatus.BOOKED) == 4
