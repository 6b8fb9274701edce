"""Consent, invitation, patient and family pages in Spanish: every visible string goes through
gettext (the pseudo-locale), the pages speak Spanish, the invitation carries the language the
patient chose, and a consent's printable copy stays in the language it was signed in."""

import re

from flask import render_template
from flask_babel import force_locale
from sqlalchemy import select

from familylink import i18n
from familylink.extensions import db
from familylink.models import AccountToken, ConsentRecord, Role, TokenPurpose, User
from familylink.services import consent, tokens
from familylink.services.timefmt import timezone_choices
from tests.factories import create_user
from tests.moments import NOON
from tests.web import test_consent_routes as routes

# The patient's form of test_consent_routes, to someone new (Luis); its fixtures: `ids` is the
# ids (Dr. Lee's patient Jordan, who consented to Maria; Drew, connected to nobody).
FORM = {**routes.FORM, "recipient_name": "Luis Rivera", "recipient_email": "luis@example.org"}
ids, settings_override = routes.ids, routes.settings_override
_invitation_link = routes._invitation_link

# Strings of forms shared with other areas (familylink/forms.py: the name, password and time
# zone fields), which their own helper wraps; listed so this test judges only this area.
SHARED_FIELDS = (
    "Your name",
    "Enter your name.",
    "Password",
    "At least 12 characters. A few unrelated words work well.",
    "Your time zone",
    "Email address",
    "New password",  # familylink/auth/forms.py, the sign-in area's
    # templates/_macros/tables.html, the layout's
    "The table is wider than your screen: scroll it sideways to see every column.",
)


def html_lang(page: str) -> str:
    return re.search(r'<html lang="([^"]+)"', page).group(1)


def _stored_words() -> list[str]:
    """What the consents hold as signed (data, in the language each was signed in)."""
    words = []
    for record in db.session.scalars(select(ConsentRecord)):
        words += [
            record.recipient_relationship,
            record.purpose,
            record.information_description,
            record.revocation_statement,
            record.expiry_description,
            record.program_name,
            record.form_version,
            *record.text_snapshot.splitlines(),
        ]
    return words


LUIS_SIGNS_UP = {
    "name": "Luis Rivera",
    "password": "lantern orchard pebble",
    "timezone": "America/Chicago",
}


def _to_luis(app) -> ConsentRecord | None:
    """The consent to Luis (read in its own app context; its columns stay loaded)."""
    with app.app_context():
        return db.session.scalar(
            select(ConsentRecord).where(ConsentRecord.recipient_email == "luis@example.org")
        )


def _invitation_locale(app) -> str | None:
    with app.app_context():
        return db.session.scalar(
            select(AccountToken.locale).where(AccountToken.purpose == TokenPurpose.FAMILY_INVITE)
        )


def _set_locale(app, email: str, locale: str) -> None:
    with app.app_context():
        db.session.scalar(select(User).where(User.email == email)).locale = locale
        db.session.commit()


def _sign(client, auth, **changes):
    auth.login("jordan@example.org")
    response = client.post("/patient/consents/new", data={**FORM, **changes})
    assert response.status_code == 302
    auth.logout()
    client.get("/login")  # shows (and so clears) the sign-out message, the sign-in area's


def _area(page: str) -> str:
    """The page's title and main content: the header, navigation and footer around them are
    the layout's, which another area translates."""
    title = re.search(r"<title>.*?</title>", page, flags=re.S)
    main = re.search(r"<main\b.*?</main>", page, flags=re.S)
    return title.group(0) + main.group(0) if main else page


def _untranslated(app, pseudo_locale, page: str, *more: str) -> list[str]:
    page = _area(page)
    with app.app_context():
        data = _stored_words()
    data += ["Dr. Grace Lee", "Jordan Rivera", "Jordan", "Maria Rivera", "Maria", "Drew Hale"]
    data += ["Luis Rivera", "Drew", "Grace", "Lee", "FamilyLink", *SHARED_FIELDS]
    data += ["maria@example.org", "jordan@example.org", "luis@example.org", "drew@example.org"]
    data += [*i18n.LANGUAGES.values(), *more]
    data += [label for _, label in timezone_choices()]  # zone names are data
    return pseudo_locale(page, *data)


# --- Every string through gettext ----------------------------------------------------------


def test_the_patients_pages_pass_through_gettext(app, client, auth, ids, pseudo_locale):
    _sign(client, auth)
    auth.login("jordan@example.org")
    cid = ids["consent"]
    for url in (
        "/patient/",
        "/patient/consents",
        "/patient/consents/new",
        f"/patient/consents/new?renew={cid}",
        f"/patient/consents/{cid}/revoke",
        "/patient/shared",
        "/patient/sessions",
        "/patient/updates",
    ):
        page = client.get(url).get_data(as_text=True)
        assert (url, _untranslated(app, pseudo_locale, page)) == (url, [])


def test_the_therapists_consent_pages_pass_through_gettext(app, client, auth, ids, pseudo_locale):
    auth.login("lee@example.org")
    for url in (
        f"/therapist/patients/{ids['jordan']}/family",
        f"/therapist/patients/{ids['jordan']}/consents/paper",
        f"/therapist/consents/{ids['consent']}/revoke",
    ):
        page = client.get(url).get_data(as_text=True)
        assert (url, _untranslated(app, pseudo_locale, page)) == (url, [])


def test_the_printable_page_passes_through_gettext_and_its_document_too(
    app, client, auth, ids, pseudo_locale
):
    auth.login("jordan@example.org")
    page = client.get(f"/patient/consents/{ids['consent']}").get_data(as_text=True)
    # The document is in the language it was signed in (English here): judged below.
    chrome = re.sub(r'<div lang="en">.*?</div>', "", page, flags=re.S)
    assert _untranslated(app, pseudo_locale, chrome) == []
    assert "Consent to share information" in page.split('<div lang="en">')[1]
    # Its own words go through gettext too: rendered in the pseudo-locale, nothing is left.
    with app.test_request_context(), force_locale(i18n.PSEUDO_LOCALE):
        document = render_template(
            "consent/_document.html",
            consent=db.session.get(ConsentRecord, ids["consent"]),
            recorded_by=None,
            language_name="English",
            **consent.form_terms(),
        )
    assert _untranslated(app, pseudo_locale, document) == []


def test_the_family_pages_pass_through_gettext(app, client, auth, ids, pseudo_locale):
    auth.login("maria@example.org")
    for url in ("/family/", f"/family/patients/{ids['jordan']}"):
        page = client.get(url).get_data(as_text=True)
        assert (url, _untranslated(app, pseudo_locale, page)) == (url, [])
    auth.logout()
    auth.login("drew@example.org")  # connected to nobody
    page = client.get("/family/").get_data(as_text=True)
    assert _untranslated(app, pseudo_locale, page) == []


def test_the_invitation_pages_pass_through_gettext(app, client, auth, ids, pseudo_locale):
    _sign(client, auth)
    link = _invitation_link(app, "luis@example.org")
    for url in (link, "/register"):
        page = client.get(url).get_data(as_text=True)
        assert (url, _untranslated(app, pseudo_locale, page)) == (url, [])
    auth.login("drew@example.org")
    wrong = client.get(link).get_data(as_text=True)
    assert _untranslated(app, pseudo_locale, wrong) == []
    auth.logout()
    client.get("/login")
    with app.app_context():
        patient = create_user(Role.PATIENT, name="Ana Soto", email="ana@example.org")
        raw = tokens.issue_token(TokenPurpose.INVITE, email=patient.email, user=patient, now=NOON)
        db.session.commit()
    page = client.get(f"/invitation/{raw}").get_data(as_text=True)
    assert _untranslated(app, pseudo_locale, page) == []


# --- In Spanish ------------------------------------------------------------------------------


def test_a_spanish_patient_reads_their_pages_in_spanish(app, client, auth, ids):
    auth.login("maria@example.org")
    client.get(f"/family/patients/{ids['jordan']}")  # a disclosure, for "what was shared"
    auth.logout()
    _set_locale(app, "jordan@example.org", "es")
    auth.login("jordan@example.org")
    expected = {
        "/patient/": "Usted decide quién de su familia participa",
        "/patient/consents": "El acceso de mi familia",
        "/patient/consents/new": "Firmar y enviar la invitación",
        f"/patient/consents/{ids['consent']}/revoke": "Sí, terminar su acceso ahora",
        "/patient/shared": "Vio una página: página del paciente",
        "/patient/sessions": "Sesiones familiares planeadas para usted",
    }
    for url, words in expected.items():
        page = client.get(url).get_data(as_text=True)
        assert html_lang(page) == "es", url
        assert words in page, url
    form = client.get("/patient/consents/new").get_data(as_text=True)
    assert "Puedo retirar (revocar) este consentimiento" in form
    assert '<option selected value="es">Español</option>' in form  # the invitation's language


def test_a_spanish_family_member_reads_their_pages_in_spanish(app, client, auth, ids):
    _set_locale(app, "maria@example.org", "es")
    auth.login("maria@example.org")
    home = client.get("/family/").get_data(as_text=True)
    assert html_lang(home) == "es" and "Personas a las que usted apoya" in home
    person = client.get(f"/family/patients/{ids['jordan']}").get_data(as_text=True)
    assert "Por favor, mantenga esto en privado" in person
    assert "Esta información se le ha dado a conocer" in person  # the §2.32 notice


def test_an_invitation_in_spanish_speaks_spanish_and_makes_a_spanish_account(
    app, client, auth, ids
):
    _sign(client, auth, invitation_locale="es")
    assert _invitation_locale(app) == "es"
    link = _invitation_link(app, "luis@example.org")
    page = client.get(link, headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert html_lang(page) == "es" and "Acepte su invitación" in page
    assert client.post(link, data=LUIS_SIGNS_UP).status_code == 302
    with app.app_context():
        assert (
            db.session.scalar(select(User.locale).where(User.email == "luis@example.org")) == "es"
        )


def test_the_visitors_own_choice_wins_over_the_invitations(app, client, auth, ids):
    _sign(client, auth, invitation_locale="es")
    link = _invitation_link(app, "luis@example.org")
    client.post("/language", data={"language": "en"})
    assert html_lang(client.get(link).get_data(as_text=True)) == "en"


def test_an_english_invitation_stays_english(app, client, auth, ids):
    _sign(client, auth)
    link = _invitation_link(app, "luis@example.org")
    page = client.get(link, headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert html_lang(page) == "en" and "Accept your invitation" in page


def test_a_spanish_consent_prints_in_spanish_for_an_english_therapist(app, client, auth, ids):
    _set_locale(app, "jordan@example.org", "es")
    _sign(client, auth)
    record = _to_luis(app)
    assert record.locale == "es"
    assert record.text_snapshot.startswith("CONSENTIMIENTO PARA COMPARTIR")
    auth.login("lee@example.org")
    contacts = client.get(f"/therapist/patients/{ids['jordan']}/family")
    assert '<td lang="es">Español</td>' in contacts.get_data(as_text=True)
    assert '<td lang="en">English</td>' in contacts.get_data(as_text=True)
    page = client.get(f"/therapist/consents/{record.id}").get_data(as_text=True)
    assert html_lang(page) == "en" and "Signed in Español." in page
    document = page.split('<div lang="es">')[1]
    for words in (
        "Consentimiento para compartir información con un familiar",
        "Aviso que acompaña a lo que se comparte (42 CFR §2.32)",
        "Esta información se le ha dado a conocer",
        "Horarios de las sesiones familiares: esta persona puede ver",
        "(escrito en el portal)",
    ):
        assert words in document
    assert "Notice that goes with what is shared" not in document


def test_the_therapist_records_a_paper_consent_in_spanish(app, client, auth, ids):
    auth.login("lee@example.org")
    url = f"/therapist/patients/{ids['jordan']}/consents/paper"
    form = client.get(url).get_data(as_text=True)
    assert "Language of the paper form" in form
    response = client.post(
        url,
        data={**FORM, "locale": "es", "signed_on": "2026-11-17", "attested": "y"},
    )
    assert response.status_code == 302
    record = _to_luis(app)
    assert (record.locale, record.method) == ("es", "paper")
    assert "9. Firmado en papel como: JORDAN RIVERA" in record.text_snapshot
    assert _invitation_locale(app) == "en"  # Jordan's own language, the select's default


def test_a_bad_language_changes_nothing(app, client, auth, ids):
    auth.login("jordan@example.org")
    response = client.post("/patient/consents/new", data={**FORM, "invitation_locale": "xx"})
    assert response.status_code == 400
    assert _to_luis(app) is None
