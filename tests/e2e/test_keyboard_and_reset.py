"""Keyboard-only use, and getting back into an account after forgetting the password."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from familylink.models import Role
from tests import factories
from tests.e2e.helpers import (
    assert_accessible,
    assert_focus_visible,
    flash,
    focused_name,
    heading,
    sign_in,
    tab_to,
)

PASSWORD = "harbor lantern cedar ninety"


def test_registration_and_sign_in_work_with_the_keyboard_alone(page: Page, inbox):
    page.goto("/register")
    page.keyboard.press("Tab")
    assert focused_name(page) == "Skip to main content"
    assert_focus_visible(page)
    page.keyboard.press("Enter")  # the skip link jumps past the header

    tab_to(page, "Your name")
    page.keyboard.type("Maria Rivera")
    tab_to(page, "Email address")
    page.keyboard.type("maria@example.org")
    tab_to(page, "Password")
    page.keyboard.type(PASSWORD)
    tab_to(page, "Email address", backwards=True)  # back to check the address
    expect(page.get_by_label("Email address")).to_have_value("maria@example.org")
    tab_to(page, "Password")
    tab_to(page, "Your time zone")
    tab_to(page, "Create account")
    page.keyboard.press("Space")
    heading(page, "Check your email")

    page.goto(inbox.link("maria@example.org"))
    tab_to(page, "Confirm my address")
    page.keyboard.press("Enter")
    flash(page, "Your email address is confirmed")

    tab_to(page, "Email address")
    page.keyboard.type("maria@example.org")
    tab_to(page, "Password")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")  # Enter in a field submits its form
    heading(page, "Hello, Maria")

    tab_to(page, "Sign out")
    page.keyboard.press("Space")
    flash(page, "You are signed out.")


def test_a_forgotten_password_is_replaced_from_the_emailed_link(page: Page, live_server, inbox):
    with live_server.database():
        factories.create_user(Role.FAMILY, name="Ada Okafor", email="ada@example.org")

    page.goto("/login")
    page.get_by_role("link", name="Forgot your password?").click()
    heading(page, "Reset your password")
    page.get_by_label("Email address").fill("ada@example.org")
    page.get_by_role("button", name="Send the link").click()
    heading(page, "Check your email")
    assert_accessible(page)

    page.goto(inbox.link("ada@example.org"))
    heading(page, "Choose a new password")
    page.get_by_label("New password").fill("short")
    page.get_by_role("button", name="Save my new password").click()
    expect(page.get_by_text("Use at least 12 characters.")).to_be_visible()
    expect(page.get_by_label("New password")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page)
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_role("button", name="Save my new password").click()
    flash(page, "Your password is set")

    page.get_by_label("Email address").fill("ada@example.org")
    page.get_by_label("Password").fill(factories.PASSWORD)  # the old one no longer works
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("That email and password don't match an account.")).to_be_visible()
    sign_in(page, "ada@example.org", PASSWORD)
    heading(page, "Hello, Ada")


def test_a_family_member_books_a_session_with_the_keyboard_alone(page: Page, live_server):
    from tests.booking_setup import create_clinic
    from tests.moments import NOON

    live_server.clock.set(NOON)
    with live_server.database():
        clinic = create_clinic()
        clinic.family.email = "maria@example.org"
    sign_in(page, "maria@example.org")

    tab_to(page, "Sessions", limit=10)
    page.keyboard.press("Enter")
    heading(page, "Family sessions")
    tab_to(page, "book a family session")
    page.keyboard.press("Enter")
    heading(page, "Book a family session for Jordan")

    tab_to(page, "9:00 AM", limit=40)  # the first free time, Thursday's
    page.keyboard.press("ArrowDown")  # the next free time
    expect(page.get_by_role("radio", checked=True)).to_have_accessible_name("10:00 AM")
    tab_to(page, "A note for the therapist (optional)")
    page.keyboard.type("We will both come.")
    tab_to(page, "Continue")
    page.keyboard.press("Enter")
    heading(page, "Check your booking")
    tab_to(page, "Book this time")
    page.keyboard.press("Space")
    heading(page, "You're booked")
    assert_accessible(page)
    tab_to(page, "Add to my calendar (.ics)")
