"""An admin adds a session type whose real address holds a clinical word: the page names
the word, offers "Use it anyway", and saves only once it is ticked (issue 17 point 5).

Every state is scanned with axe, the refusal included.
"""

from __future__ import annotations

from playwright.sync_api import Page, expect
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import AuditEvent, Role, SessionType
from tests import factories
from tests.e2e.helpers import assert_accessible, flash, heading, sign_in


def test_a_location_on_recovery_drive_is_saved_once_the_admin_confirms_it(page: Page, live_server):
    with live_server.database():
        factories.create_user(Role.ADMIN, name="Alex Morgan", email="alex@example.org")
    sign_in(page, "alex@example.org")
    page.goto("/admin/session-types")
    heading(page, "Session types")
    assert_accessible(page)
    expect(page.get_by_label("Use it anyway")).to_have_count(0)

    page.get_by_label("Name").fill("Couples session")
    page.get_by_label("Length in minutes").fill("60")
    page.get_by_label("Room or address").fill("12 Recovery Drive, Suite 4")
    page.get_by_role("button", name="Add session type").click()
    expect(page.get_by_text('it contains "Recovery"')).to_be_visible()
    confirm = page.get_by_label("Use it anyway")
    expect(confirm).not_to_be_checked()
    assert_accessible(page)

    confirm.check()
    page.get_by_role("button", name="Add session type").click()
    flash(page, "Session type “Couples session” added.")
    assert_accessible(page)
    with live_server.database():
        made = db.session.scalar(select(SessionType).where(SessionType.name == "Couples session"))
        assert made.location == "12 Recovery Drive, Suite 4"
        event = db.session.scalar(
            select(AuditEvent).where(AuditEvent.action == "screening.confirmed")
        )
        assert event.detail == {"field": "location", "words": ["recovery"]}
