"""Journeys around groups and reading: a full group's waitlist, a module from the
therapist's assignment to the family's "done" and back to the therapist's progress view, and
reflections that reach only the therapist of the patient they are about.

Each person has their own browser context (own cookies); every step is scanned with axe.
"""

from __future__ import annotations

import re
from datetime import date, time

from playwright.sync_api import Page, expect

from familylink.models import Role
from familylink.services import booking
from tests import factories
from tests.booking_setup import add_weekday_hours, create_session_types
from tests.e2e.helpers import assert_accessible, flash, heading, nav, sign_in
from tests.moments import NOON

DESKTOP = {"width": 1280, "height": 800}


def _tab(new_context, live_server, email: str) -> Page:
    tab = new_context(base_url=live_server.url, viewport=DESKTOP).new_page()
    sign_in(tab, email)
    return tab


def _three_families_and_a_group_of_two(live_server) -> None:
    with live_server.database():
        therapist = factories.create_user(
            Role.THERAPIST, name="Dr. Grace Lee", email="lee@example.org"
        )
        add_weekday_hours(therapist)
        _private, group = create_session_types()
        for patient_name, family_name, email in [
            ("Jordan Rivera", "Maria Rivera", "maria@example.org"),
            ("Sam Okafor", "Ada Okafor", "ada@example.org"),
            ("Lee Stone", "Bea Stone", "bea@example.org"),
        ]:
            patient = factories.create_user(Role.PATIENT, name=patient_name, therapist=therapist)
            family = factories.create_user(Role.FAMILY, name=family_name, email=email)
            factories.create_consent(patient, family, scopes=("scheduling",))
        booking.schedule_group(
            actor=therapist,
            session_type_id=group.id,
            first_day=date(2026, 11, 25),
            start_time=time(17),
            weeks=1,
            capacity=2,
            now=NOON,
        )


def _groups_page(tab: Page) -> None:
    nav(tab, "Sessions")
    tab.get_by_role("link", name="join a group").click()
    heading(tab, re.compile("^Group sessions for"))


def test_a_full_group_waitlist_offer_and_claim(page: Page, live_server, new_context, inbox):
    live_server.clock.set(NOON)
    _three_families_and_a_group_of_two(live_server)

    maria = page
    sign_in(maria, "maria@example.org")
    _groups_page(maria)
    expect(maria.get_by_text("2 of 2 places free")).to_be_visible()
    assert_accessible(maria)
    maria.get_by_role("button", name="Take a place").click()
    heading(maria, "You're booked")
    assert_accessible(maria)

    ada = _tab(new_context, live_server, "ada@example.org")
    _groups_page(ada)
    ada.get_by_role("button", name="Take a place").click()
    heading(ada, "You're booked")

    bea = _tab(new_context, live_server, "bea@example.org")
    _groups_page(bea)
    expect(bea.get_by_text("0 of 2 places free")).to_be_visible()
    expect(bea.get_by_text(re.compile("Rivera|Okafor"))).to_have_count(0)
    bea.get_by_role("button", name="Join the waitlist").click()
    flash(bea, "You are on the waitlist")
    assert_accessible(bea)

    nav(maria, "Sessions")
    maria.get_by_role("link", name=re.compile("2026")).first.click()
    maria.get_by_role("link", name="Cancel this session…").click()
    heading(maria, "Cancel this session?")  # asked first, naming the session
    assert_accessible(maria)
    maria.get_by_role("button", name="Yes, cancel this session").click()
    expect(maria.get_by_role("status")).to_be_visible()
    assert_accessible(maria)

    offer = inbox.latest("bea@example.org")
    assert offer["Subject"] == "A place has opened for you"
    assert not re.search("Rivera|Okafor|Jordan|Maria", inbox.text(offer))
    bea.goto(inbox.link("bea@example.org"))
    heading(bea, "Take the place we held for you")
    assert_accessible(bea)
    bea.get_by_role("button", name="Take the place").click()
    heading(bea, "You're booked")
    assert_accessible(bea)


def test_attendance_a_module_read_and_done_and_the_therapists_progress_view(
    page: Page, live_server, new_context
):
    live_server.clock.set(NOON)
    with live_server.database():
        from familylink.services import learning

        learning.load_modules(now=NOON)
        therapist = factories.create_user(
            Role.THERAPIST, name="Dr. Grace Lee", email="lee@example.org"
        )
        add_weekday_hours(therapist)
        private, _group = create_session_types()
        patient = factories.create_user(Role.PATIENT, name="Jordan Rivera", therapist=therapist)
        maria = factories.create_user(Role.FAMILY, name="Maria Rivera", email="maria@example.org")
        factories.create_consent(
            patient, maria, scopes=("scheduling", "attendance", "progress"), now=NOON
        )
        # A session earlier today (booked the day before), so attendance can be marked.
        earlier = NOON.replace(hour=14)
        booking.book_private(
            actor=maria,
            patient_id=patient.id,
            session_type_id=private.id,
            starts_at=earlier,
            attendee_ids=[],
            note="",
            request_key="journey-4",
            now=NOON.replace(day=17),
        )
        first = learning.all_modules()[0]
        title, numbered = first.title, f"{first.order}. {first.title}"

    lee = _tab(new_context, live_server, "lee@example.org")
    nav(lee, "Calendar")
    assert_accessible(lee)
    lee.get_by_label("Mark attendance of Jordan Rivera's family").select_option("Attended")
    lee.get_by_role("button", name="Save attendance of Jordan Rivera's family").click()
    expect(lee.get_by_text("attended", exact=True)).to_be_visible()
    assert_accessible(lee)

    nav(lee, "Family reading")
    lee.get_by_role("link", name="Jordan Rivera").click()
    heading(lee, "Family reading: Jordan Rivera")
    lee.get_by_label(numbered, exact=True).check()
    lee.get_by_role("button", name="Assign now").click()
    expect(lee.get_by_role("status")).to_be_visible()
    assert_accessible(lee)

    sign_in(page, "maria@example.org")
    nav(page, "Reading")
    assert_accessible(page)
    page.get_by_role("region", name="From your care team").get_by_role("link", name=title).click()
    heading(page, title)
    assert_accessible(page)
    page.get_by_label("I have finished this reading").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text(re.compile("You finished this on"))).to_be_visible()

    lee.reload()
    row = lee.get_by_role("row").filter(has_text=title)
    expect(row.get_by_role("cell").nth(4)).not_to_have_text("not yet")
    assert_accessible(lee)


def test_a_reflection_reaches_only_the_therapist_of_the_patient_it_is_about(
    page: Page, live_server, new_context
):
    """Issue 16: Maria is linked to Jordan (Dr. Lee) and Casey (Dr. Patel). Her reflection on
    the reading assigned about Jordan reaches Dr. Lee only; a reading she chose herself reaches
    the therapist she picks, and nobody until she does."""
    live_server.clock.set(NOON)
    with live_server.database():
        from familylink.services import learning

        learning.load_modules(now=NOON)
        lee = factories.create_user(Role.THERAPIST, name="Dr. Grace Lee", email="lee@example.org")
        patel = factories.create_user(
            Role.THERAPIST, name="Dr. Ravi Patel", email="patel@example.org"
        )
        jordan = factories.create_user(Role.PATIENT, name="Jordan Rivera", therapist=lee)
        casey = factories.create_user(Role.PATIENT, name="Casey Nguyen", therapist=patel)
        maria = factories.create_user(Role.FAMILY, name="Maria Rivera", email="maria@example.org")
        factories.create_consent(jordan, maria, now=NOON)
        factories.create_consent(casey, maria, now=NOON, relationship="Aunt")
        first, second = learning.all_modules()[:2]
        learning.assign_modules(
            therapist=lee,
            patient_id=jordan.id,
            family_user_id=maria.id,
            module_ids=[first.id],
            note=None,
            now=NOON,
        )
        assigned, chosen = first.title, second.title
        jordan_id, casey_id = jordan.id, casey.id

    sign_in(page, "maria@example.org")
    nav(page, "Reading")
    care_team = page.get_by_role("region", name="From your care team")
    expect(care_team.get_by_text("About Jordan")).to_be_visible()
    care_team.get_by_role("link", name=assigned).click()
    heading(page, assigned)
    expect(page.get_by_text("A reading about Jordan")).to_be_visible()
    page.get_by_label("Your reflection (private)").fill("Holidays worry me.")
    page.get_by_label("Share my reflection with").select_option("Jordan Rivera's therapist")
    page.get_by_role("button", name="Save").click()
    flash(page, "Saved.")
    assert_accessible(page)

    page.goto("/learn/")
    page.get_by_role("link", name=chosen).first.click()
    heading(page, chosen)
    expect(page.get_by_text("A reading of your own")).to_be_visible()
    page.get_by_label("Your reflection (private)").fill("I should ask Casey first.")
    page.get_by_role("button", name="Save").click()  # shared with nobody by default
    flash(page, "Saved.")
    patel_tab = _tab(new_context, live_server, "patel@example.org")
    patel_tab.goto(f"/learn/therapist/patients/{casey_id}")
    heading(patel_tab, "Family reading: Casey Nguyen")
    expect(patel_tab.get_by_text("Holidays worry me.")).to_have_count(0)
    expect(patel_tab.get_by_text("I should ask Casey first.")).to_have_count(0)

    page.get_by_label("Share my reflection with").select_option("Casey Nguyen's therapist")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("A reading about Casey")).to_be_visible()

    patel_tab.reload()
    expect(patel_tab.get_by_text("I should ask Casey first.")).to_be_visible()
    expect(patel_tab.get_by_text("Holidays worry me.")).to_have_count(0)
    assert_accessible(patel_tab)
    lee_tab = _tab(new_context, live_server, "lee@example.org")
    lee_tab.goto(f"/learn/therapist/patients/{jordan_id}")
    expect(lee_tab.get_by_text("Holidays worry me.")).to_be_visible()
    expect(lee_tab.get_by_text("I should ask Casey first.")).to_have_count(0)
