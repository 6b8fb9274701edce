"""Issue 23: a family's whole way in, in Spanish.

A patient whose account speaks Spanish invites her mother in Spanish; the invitation, the
page where the mother joins, the booking, the confirmation email with its calendar file and
the reminder all reach her in Spanish, with no clinical word in any email. The browser itself
asks for English (the `page` fixture), so every Spanish word comes from the person's choice.
"""

from __future__ import annotations

import re
from datetime import timedelta

from icalendar import Calendar
from playwright.sync_api import Page, expect

from familylink.models import Role
from tests import factories
from tests.booking_setup import add_weekday_hours, create_session_types
from tests.e2e.helpers import assert_accessible, heading, horizontal_overflow
from tests.moments import NOON

FAMILY_PASSWORD = "linterna puerto arce siete"
# What no email or calendar file may say, in either language (DESIGN.md, "Email").
CLINICAL_WORDS = re.compile(
    r"addiction|substance|rehab|recovery|treatment|\bIOP\b|detox|diagnos|alcohol|drug|"
    r"adicci|sustancia|recuperaci|tratamiento|salud mental|terapia|desintox|droga|Rivera",
    re.IGNORECASE,
)


# The consent form's answers, by the Spanish label of each field (True: a box ticked).
INVITATION = {
    "Nombre completo del familiar": "Maria Rivera",
    "Qué relación tiene con usted": "madre",
    "Su correo electrónico": "maria@example.org",
    "Horarios de las sesiones familiares": True,
    re.compile(r"^En una fecha que yo elijo"): True,
    "Fecha de fin (si eligió una fecha)": "2027-05-01",
    "Firme escribiendo su nombre completo": "Jordan Rivera",
    "He leído este consentimiento y lo entiendo.": True,
}


def _spanish(page: Page, title: str | None = None) -> None:
    """The page reached speaks Spanish (its heading `title`, when given) and passes axe."""
    if title:
        heading(page, title)
    expect(page.locator("html")).to_have_attribute("lang", "es")
    assert_accessible(page)


def _seed(live_server) -> None:
    """Dr. Lee with free hours, and her patient Jordan, whose account speaks Spanish."""
    live_server.clock.set(NOON)
    with live_server.database():
        _jordan_who_speaks_spanish()


def _jordan_who_speaks_spanish() -> None:
    therapist = factories.create_user(Role.THERAPIST, name="Dr. Grace Lee", email="lee@example.org")
    add_weekday_hours(therapist)
    create_session_types()
    factories.create_user(
        Role.PATIENT,
        name="Jordan Rivera",
        email="jordan@example.org",
        therapist=therapist,
        locale="es",
    )


def _sign_in_in_spanish(page: Page, email: str, password: str) -> None:
    page.goto("/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    heading(page, re.compile(r"^Hola, "))
    _spanish(page)


def _invite_in_spanish(page: Page) -> None:
    _sign_in_in_spanish(page, "jordan@example.org", factories.PASSWORD)
    page.get_by_role("navigation", name="Principal").get_by_role(
        "link", name="El acceso de mi familia"
    ).click()
    _spanish(page)
    page.get_by_role("link", name="Invitar a un familiar").click()
    _spanish(page)
    expect(page.get_by_label("Idioma de la invitación")).to_have_value("es")  # hers
    for label, answer in INVITATION.items():
        if answer is True:
            page.get_by_label(label).check()
        else:
            page.get_by_label(label).fill(answer)
    page.get_by_role("button", name="Firmar y enviar la invitación").click()
    expect(page.get_by_role("status")).to_contain_text("Maria Rivera")
    _spanish(page)
    page.get_by_role("button", name="Cerrar sesión").click()


def _join_from_the_invitation(page: Page, inbox) -> None:
    invitation = inbox.latest("maria@example.org")
    assert invitation["Subject"] == "Le invitamos a las sesiones de su familia"
    text = inbox.text(invitation)
    assert not CLINICAL_WORDS.search(str(invitation["Subject"]) + text), text
    assert "Acepte la invitación aquí" in text, text
    page.goto(inbox.link("maria@example.org"))
    _spanish(page)
    expect(page.get_by_label("Su nombre")).to_have_value("Maria Rivera")
    page.get_by_label("Contraseña").fill(FAMILY_PASSWORD)
    page.get_by_role("button", name="Crear cuenta y aceptar").click()
    expect(page.get_by_role("status")).to_be_visible()
    _spanish(page)


def _book_in_spanish(page: Page) -> None:
    page.get_by_role("navigation", name="Principal").get_by_role("link", name="Sesiones").click()
    _spanish(page)
    page.get_by_role("link", name="reservar una sesión familiar").click()
    _spanish(page, "Reservar una sesión familiar para Jordan")
    page.get_by_role("group", name=re.compile(r"jueves.*19 de noviembre")).get_by_label(
        re.compile(r"^10:00")
    ).check()
    page.get_by_role("button", name="Continuar").click()
    _spanish(page, "Revise su reserva")
    page.get_by_role("button", name="Reservar este horario").click()
    _spanish(page, "Su reserva está lista")


def test_a_spanish_speaking_family_is_invited_joins_books_and_is_reminded_in_spanish(
    page: Page, live_server, inbox
):
    _seed(live_server)
    _invite_in_spanish(page)
    _join_from_the_invitation(page, inbox)

    page.set_viewport_size({"width": 320, "height": 800})  # the week picker on a small phone
    _book_in_spanish(page)
    assert horizontal_overflow(page) == 0

    confirmation = inbox.latest("maria@example.org")
    text = str(confirmation["Subject"]) + inbox.text(confirmation)
    assert not CLINICAL_WORDS.search(text), text
    assert confirmation["Subject"] == "Su cita está confirmada"
    (attachment,) = [part for part in confirmation.iter_attachments()]
    calendar = Calendar.from_ical(attachment.get_content())
    (event,) = calendar.walk("VEVENT")
    assert str(event["SUMMARY"]) == "Sesión familiar con Dr. Grace Lee"
    assert not CLINICAL_WORDS.search(calendar.to_ical().decode()), calendar.to_ical()

    live_server.send_reminders(event.decoded("DTSTART") - timedelta(hours=2))
    reminder = inbox.latest("maria@example.org")
    assert reminder["Subject"] == "Recordatorio de su cita"
    text = inbox.text(reminder)
    assert not CLINICAL_WORDS.search(text), text
    assert "Sesión familiar con Dr. Grace Lee" in text
