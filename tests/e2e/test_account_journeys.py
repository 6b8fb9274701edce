"""Journeys through accounts as people live them: sign-up, invitations, password reset.

Each step is checked with axe as it is reached, so error and confirmation states are scanned
too, not only the pages a crawler would find.
"""

from __future__ import annotations

from playwright.sync_api import Page, expect
from sqlalchemy import select

from familylink.models import Role, User
from tests import factories
from tests.e2e.helpers import (
    assert_accessible,
    enrol_two_step,
    flash,
    heading,
    sign_in,
    sign_out,
)

NEW_PASSWORD = "lantern harbor maple seven"


def test_a_family_member_signs_up_confirms_the_address_and_finds_the_home_page(page: Page, inbox):
    page.goto("/")
    assert_accessible(page)
    page.get_by_role("link", name="Create a family account").click()
    heading(page, "Create your account")
    page.get_by_label("Your name").fill("Maria Rivera")
    page.get_by_label("Email address").fill("maria@example.org")
    page.get_by_label("Password").fill(NEW_PASSWORD)
    expect(page.get_by_label("Your time zone")).to_have_value("America/New_York")
    page.get_by_role("button", name="Create account").click()
    heading(page, "Check your email")
    assert_accessible(page)

    page.goto(inbox.link("maria@example.org"))
    heading(page, "Confirm your email address")
    assert_accessible(page)
    page.get_by_role("button", name="Confirm my address").click()
    flash(page, "Your email address is confirmed")

    page.get_by_label("Email address").fill("maria@example.org")
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    heading(page, "Hello, Maria")
    expect(page.get_by_text("You are not connected to anyone yet.")).to_be_visible()
    assert_accessible(page)


def test_an_admin_invites_a_therapist_who_enrols_a_patient_who_accepts(
    page: Page, live_server, inbox
):
    with live_server.database():
        factories.create_user(Role.ADMIN, name="Alex Admin", email="admin@example.org")

    sign_in(page, "admin@example.org")
    heading(page, "Therapists")
    page.get_by_label("Full name").fill("Grace Lee")
    page.get_by_label("Email address").fill("lee@example.org")
    page.get_by_role("button", name="Send invitation").click()
    flash(page, "Invitation sent to lee@example.org")
    expect(page.get_by_text("Grace Lee")).to_contain_text("invitation not yet accepted")
    assert_accessible(page)
    sign_out(page)

    page.goto(inbox.link("lee@example.org"))
    heading(page, "Set up your account")
    assert_accessible(page)
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Save and continue").click()
    flash(page, "Your password is set")

    sign_in(page, "lee@example.org", NEW_PASSWORD)
    heading(page, "Set up two-step sign-in")  # staff must, before any patient information
    assert_accessible(page)
    enrol_two_step(page)
    heading(page, "My patients")
    expect(page.get_by_text("You have no patients yet.")).to_be_visible()
    page.get_by_label("Patient's full name").fill("Jordan Rivera")
    page.get_by_label("Patient's email address").fill("jordan@example.org")
    page.get_by_label("Episode start date").fill("2026-11-02")
    page.get_by_role("button", name="Enrol and send invitation").click()
    flash(page, "Jordan Rivera is enrolled")
    expect(page.get_by_role("listitem").filter(has_text="Jordan Rivera")).to_contain_text(
        "invitation not yet accepted"
    )
    assert_accessible(page)
    sign_out(page)

    page.goto(inbox.link("jordan@example.org"))
    page.get_by_label("New password").fill("copper kettle winter field")
    page.get_by_role("button", name="Save and continue").click()
    sign_in(page, "jordan@example.org", "copper kettle winter field")
    heading(page, "Hello, Jordan")
    assert_accessible(page)

    with live_server.database() as session:
        jordan = session.scalars(select(User).where(User.email == "jordan@example.org")).one()
        assert jordan.role == Role.PATIENT and jordan.verified_at is not None


def test_two_step_changes_ask_for_the_password_again(page: Page, live_server):
    with live_server.database():
        factories.create_user(Role.FAMILY, name="Maria Rivera", email="maria@example.org", mfa=True)

    sign_in(page, "maria@example.org")
    page.goto("/account/mfa")
    heading(page, "Two-step sign-in is on")
    assert_accessible(page)
    codes = page.locator("form", has=page.get_by_role("button", name="Make new recovery codes"))
    codes.get_by_label("Your password").fill("not my password at all")
    codes.get_by_role("button", name="Make new recovery codes").click()
    expect(page.get_by_text("That is not your current password.")).to_be_visible()
    assert_accessible(page)
    codes = page.locator("form", has=page.get_by_role("button", name="Make new recovery codes"))
    codes.get_by_label("Your password").fill(factories.PASSWORD)
    codes.get_by_role("button", name="Make new recovery codes").click()
    heading(page, "Your recovery codes")

    page.goto("/account/mfa")
    off = page.locator("form", has=page.get_by_role("button", name="Turn two-step sign-in off"))
    off.get_by_label("Your password").fill(factories.PASSWORD)
    off.get_by_role("button", name="Turn two-step sign-in off").click()
    flash(page, "Two-step sign-in is off.")
