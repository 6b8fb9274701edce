"""A family member joins a video session through its FamilyLink join link: too early, the page
says when the room opens; 10 minutes before the start, the link sends her to the session's
own room (issue 20, point 3).

The browser never leaves the live server: the join request is intercepted, sent on to the
server without following its redirect (route.fetch(max_redirects=0)), the 303 and its
Location are checked, and a stand-in room page is returned in place of the room's site.
"""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import Page, Route, expect

from familylink.extensions import db
from familylink.models import Role, SessionType
from familylink.services.booking.rooms import room_name
from familylink.services.program import forget_cached_program, program_row
from tests import factories
from tests.booking_setup import add_appointment
from tests.e2e.helpers import assert_accessible, heading, sign_in
from tests.moments import NOON

STARTS = NOON + timedelta(days=2)  # 12:00 in New York
ROOM_HOST = "meet.example-clinic.org"


def _marias_video_session() -> tuple[int, str, str]:
    """(seat id, join path, room URL) of Maria's video session with Dr. Lee about Jordan."""
    lee = factories.create_user(Role.THERAPIST, name="Dr. Grace Lee", email="lee@example.org")
    jordan = factories.create_user(
        Role.PATIENT, name="Jordan Rivera", email="jordan@example.org", therapist=lee
    )
    maria = factories.create_user(Role.FAMILY, name="Maria Rivera", email="maria@example.org")
    factories.create_consent(jordan, maria)
    program_row().video_room_template = f"https://{ROOM_HOST}/{{room}}"
    video = SessionType(name="Family session (video)", duration_minutes=50, mode="video")
    db.session.add(video)
    db.session.flush()
    forget_cached_program()
    seat = add_appointment(lee, jordan, maria, video, starts_at=STARTS, booked_at=NOON)
    appointment = seat.appointment
    return (
        seat.id,
        f"/join/{appointment.join_token}",
        f"https://{ROOM_HOST}/{room_name(appointment)}",
    )


def test_a_family_member_joins_her_video_session_10_minutes_before_it_starts(
    page: Page, live_server
):
    with live_server.database():
        seat_id, join_path, room = _marias_video_session()
    redirects: list[tuple[int, str]] = []

    def answer_join(route: Route) -> None:
        response = route.fetch(max_redirects=0)
        if response.status != 303:
            route.fulfill(response=response)
            return
        redirects.append((response.status, response.headers["location"]))
        route.fulfill(
            status=200,
            content_type="text/html",
            body='<!doctype html><html lang="en"><title>Video room</title>'
            "<main><h1>Video room</h1></main></html>",
        )

    page.route(f"**{join_path}", answer_join)
    # Anything bound for the room's site itself would be a leak past the join link.
    page.route(f"https://{ROOM_HOST}/**", lambda route: route.abort())

    live_server.clock.set(STARTS - timedelta(minutes=20))
    sign_in(page, "maria@example.org")
    page.goto(f"/booking/{seat_id}")
    heading(page, "Your session")
    link = page.get_by_role("link", name="join the video session")
    expect(link).to_have_attribute("href", join_path)
    assert ROOM_HOST not in page.content()
    assert_accessible(page)

    link.click()
    heading(page, "Your video session has not opened yet")
    expect(page.get_by_text("The room opens at")).to_contain_text("11:45")
    assert_accessible(page)
    assert redirects == []

    live_server.clock.set(STARTS - timedelta(minutes=10))
    page.goto(f"/booking/{seat_id}")
    page.get_by_role("link", name="join the video session").click()
    heading(page, "Video room")
    assert redirects == [(303, room)]
