"""The development mailbox speaks the reader's language too (emails keep their recipient's)."""

from __future__ import annotations

import pytest

from familylink.extensions import db
from familylink.services import mail
from familylink.services.program import get_program
from tests.moments import NOON

ADDRESS = "rosa@example.org"
NAMES = ("FamilyLink", "Español")  # the product's name, and the switch's own word for Spanish


@pytest.fixture
def queued(app):
    """One email in the outbox, to an address with no account, with an attachment name."""
    with app.app_context():
        row = mail.queue_email(
            "reset_no_account",
            to=ADDRESS,
            dedupe_key="dev-mailbox:1",
            now=NOON,
            attachment=mail.Attachment("invite.ics", "text/calendar", b"BEGIN:VCALENDAR"),
        )
        db.session.commit()
        return row.id


def test_the_mailbox_has_no_english_that_skipped_gettext(client, queued, pseudo_locale):
    page = client.get("/dev/mailbox").get_data(as_text=True)
    assert pseudo_locale(page, ADDRESS, "About your password reset", *NAMES) == []


def test_a_message_has_no_english_that_skipped_gettext(client, queued, pseudo_locale):
    page = client.get(f"/dev/mailbox/{queued}").get_data(as_text=True)
    subject = "About your password reset"
    with client.application.app_context():
        sender = get_program().sender_name  # the email's signature
    body = (
        sender,
        "Hello,",
        "Someone asked to reset the password for this email address, but no account you can "
        "sign in to uses it. If it was you, you may have signed up with another address.",
        "If it wasn't you, you can ignore this email. Nothing has changed.",
        "If it wasn&#39;t you, you can ignore this email. Nothing has changed.",
    )
    words = pseudo_locale(page, ADDRESS, subject, "invite.ics", *body, *NAMES)
    assert words == [], words


def test_the_mailbox_reads_in_spanish(client, queued):
    page = client.get("/dev/mailbox", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert '<html lang="es"' in page
    assert "Buzón de desarrollo" in page and "en espera" in page


def test_a_message_reads_in_spanish(client, queued):
    page = client.get(f"/dev/mailbox/{queued}", headers={"Accept-Language": "es"})
    text = page.get_data(as_text=True)
    assert "Volver al buzón" in text
    assert f"Para: {ADDRESS} · Estado: en espera · Archivo adjunto: invite.ics" in text
