"""The family's side of weekly series: "Repeat weekly" on the booking page only when the
program allows it (a forged POST is refused otherwise), the confirmation page listing every
week (conflicts first, 409 and nothing booked while any), and "cancel this and all future"
with a confirmation page. The clock is a week before the 2026-11-01 fall-back."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from familylink.extensions import db
from familylink.models import (
    Appointment,
    AppointmentFamily,
    AppointmentSeries,
    AuditEvent,
    OutboxEmail,
    Role,
    SeatStatus,
    SessionType,
    User,
)
from tests.booking_setup import add_appointment, add_family
from tests.factories import create_consent, create_user, set_program
from tests.moments import WEEK_BEFORE_FALL_BACK
from tests.queries import consent_reads
from tests.web.test_series_pages import FIRST, NEW_YORK, series_seats

SLOT = FIRST.strftime("%Y-%m-%dT%H:%MZ")


@pytest.fixture
def settings_override():
    return {"NOW_OVERRIDE": WEEK_BEFORE_FALL_BACK}


def allow_family_series(app, on: bool = True) -> None:
    set_program(app, families_may_book_series=on)


def book_url(clinic) -> str:
    return f"/booking/new?patient={clinic['patient']}"


def series_form(**extra) -> dict:
    data = {"slot": SLOT, "weeks": "4", "note": "", "request_key": "series-key-1"}
    data.update(extra)
    return data


def count(app, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _add_session(app, clinic, starts_at, *, other_family=False) -> int:
    """A single session with the clinic's therapist (of another patient's family, or of
    Maria's), booked directly; its seat's id."""
    with app.app_context():
        therapist = db.session.get(User, clinic["therapist_id"])
        if other_family:
            patient, member = create_user(Role.PATIENT, therapist=therapist), create_user()
        else:
            patient = db.session.get(User, clinic["patient"])
            member = db.session.get(User, clinic["family_id"])
        private = db.session.get(SessionType, clinic["private"])
        seat = add_appointment(
            therapist, patient, member, private, starts_at=starts_at, booked_at=FIRST
        )
        return seat.id


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
    assert response.status_code == 200
    first, last = (
        "Tuesday, October 27, 2026, 10:00 AM EDT",
        "Tuesday, November 17, 2026, 10:00 AM EST",
    )
    assert {first, last, "Book all 4 weeks"} <= _shown(response)
    assert count(app, Appointment) == 0


def test_choose_another_time_takes_the_weeks_and_the_note_back_to_the_picker(
    app, client, auth, clinic
):
    allow_family_series(app)
    auth.login(clinic["family"])
    listed = client.post(book_url(clinic), data=series_form(note="Bring the forms"))
    page = listed.get_data(as_text=True)
    assert 'name="change" value="1"' in page and page.count('value="Bring the forms"') == 2
    back = client.post(book_url(clinic), data=series_form(note="Bring the forms", change="1"))
    week = back.get_data(as_text=True)
    assert back.status_code == 200 and "Bring the forms</textarea>" in week
    assert re.search(r"<option selected value=\"4\">|<option value=\"4\" selected", week)
    assert count(app, Appointment) == 0


def _shown(response) -> set[str]:
    """The texts of the page's table cells and buttons."""
    import re

    return set(re.findall(r"<(?:td|button[^>]*)>([^<]+)<", response.get_data(as_text=True)))


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
    # Another family's session in the third week.
    _add_session(app, clinic, datetime(2026, 11, 10, 10, 0, tzinfo=NEW_YORK), other_family=True)
    auth.login(clinic["family"])
    response = client.post(book_url(clinic), data=series_form(confirmed="1"))
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    # The week that can't be used comes first; nothing offers to book, and nothing was.
    assert page.index("Your therapist is not free then.") < page.index("October 27")
    assert "Book all" not in page
    assert (count(app, AppointmentSeries), count(app, Appointment)) == (0, 1)


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
    seat = _add_session(app, clinic, FIRST)
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


def _sessions_list(client, count_queries) -> tuple[str, int]:
    client.get("/booking/")  # warm
    with count_queries() as counter:
        page = client.get("/booking/").get_data(as_text=True)
    return page, counter.count


def test_the_sessions_list_says_which_week_of_its_series_each_is(
    app, client, auth, clinic, count_queries
):
    allow_family_series(app)
    auth.login(clinic["family"])
    client.post(book_url(clinic), data=series_form(weeks="2", confirmed="1"))
    page, queries = _sessions_list(client, count_queries)
    assert "weekly, 1 of 2" in page and "weekly, 2 of 2" in page
    later = (FIRST + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%MZ")
    more = series_form(slot=later, weeks="4", confirmed="1", request_key="series-key-2")
    assert client.post(book_url(clinic), data=more).status_code == 302
    page, more_queries = _sessions_list(client, count_queries)
    assert [f"weekly, {n} of 4" in page for n in (1, 2, 3, 4)] == [True] * 4
    assert more_queries == queries  # one query for every series shown, none per row


def _confirm_with_a_visible_relative(app, client, auth, clinic, count_queries):
    """Luis, whose consent lets him invite the other family members, confirms a series
    for himself and Maria; what the request read."""
    allow_family_series(app)
    with app.app_context():
        add_family(
            db.session.get(User, clinic["patient"]),
            "Luis Rivera",
            family_visible=True,
            email="luis@example.org",
        )
        db.session.commit()
    auth.login("luis@example.org")
    form = series_form(confirmed="1", attendees=[clinic["family_id"]])
    with count_queries() as counter:
        response = client.post(book_url(clinic), data=form)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    assert len(series_seats(app)) == 4
    return counter


def test_the_confirming_post_reads_each_attendees_consent_once(
    app, client, auth, clinic, count_queries
):
    """Luis's consent by the page's gate (the series is booked under that answer), Maria's
    once for when it ends: not again for the plan made under the therapist's lock."""
    counter = _confirm_with_a_visible_relative(app, client, auth, clinic, count_queries)
    assert consent_reads(counter) == 2


def test_the_confirming_post_records_the_gates_disclosure_once(
    app, client, auth, clinic, count_queries
):
    _confirm_with_a_visible_relative(app, client, auth, clinic, count_queries)
    with app.app_context():
        shown = db.session.scalars(
            select(AuditEvent.detail).where(AuditEvent.action == "disclosure.viewed")
        ).all()
    assert [d["what"] for d in shown] == ["booking page"]


@pytest.mark.parametrize(
    ("locale", "zone", "said"),
    [
        ("en", "America/New_York", "Every Tuesday for 4 weeks"),
        # 10:00 on a Tuesday in New York is 3:00 on the Wednesday in Auckland.
        ("en", "Pacific/Auckland", "Every Wednesday for 4 weeks"),
        ("es", "Pacific/Auckland", "Cada miércoles durante 4 semanas"),
    ],
)
def test_the_confirmation_names_the_weekday_in_the_readers_language_and_zone(
    app, client, auth, clinic, locale, zone, said
):
    allow_family_series(app)
    with app.app_context():
        member = db.session.get(User, clinic["family_id"])
        member.locale, member.timezone = locale, zone
        db.session.commit()
    auth.login(clinic["family"])
    response = client.post(book_url(clinic), data=series_form())
    assert response.status_code == 200
    assert said in response.get_data(as_text=True)
