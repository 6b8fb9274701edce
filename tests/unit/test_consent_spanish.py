"""A consent signed in Spanish: its stored words and snapshot are Spanish and carry every
§2.31 element and the §2.32 notice; one signed in English is unchanged. The Spanish signed
words are pinned here, as test_scope pins the English: a catalogue edit cannot change a
signed form without a new form version."""

from datetime import date

import pytest
from flask_babel import force_locale
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import AccountToken, OutboxEmail, Role, Scope, TokenPurpose
from familylink.services import consent
from familylink.services.errors import ValidationError
from tests.unit.test_consent_lifecycle import details

# Form version 2, in Spanish, as signed.
SIGNED_WORDS_ES = {
    "scheduling": "Horarios de las sesiones familiares: esta persona puede ver y reservar "
    "sesiones familiares con mi terapeuta, y recibir recordatorios de ellas por correo "
    "electrónico.",
    "attendance": "Asistencia: esta persona puede ver si fui a mis sesiones.",
    "progress": "Progreso general: mi terapeuta puede compartir notas breves y generales sobre "
    "cómo estoy, escritas para mi familia. Nunca mis notas de terapia.",
}
REVOCATION_ES = (
    "Puedo retirar (revocar) este consentimiento en cualquier momento, para una persona a la "
    'vez: en mi página de FamilyLink "El acceso de mi familia", o avisando por escrito a mi '
    "terapeuta. Termina de inmediato."
)
RELIANCE_ES = (
    "Retirarlo no deshace lo que ya se compartió ni lo que el programa ya hizo mientras este "
    "consentimiento estaba vigente."
)
NOTICE_ES_START = (
    "Esta información se le ha dado a conocer a partir de registros protegidos por las normas "
    "federales de confidencialidad (42 CFR parte 2)."
)
NOTICE_ES_END = "salvo lo previsto en §§ 2.12(c)(5) y 2.65."


@pytest.fixture
def people(create_user):
    lee = create_user(Role.THERAPIST, name="Dr. Grace Lee", email="lee@example.org")
    jordan = create_user(
        Role.PATIENT, name="Jordan Rivera", email="jordan@example.org", therapist=lee, locale="es"
    )
    return lee, jordan


def test_the_spanish_signed_words_are_pinned(app):
    with app.test_request_context(), force_locale("es"):
        assert {scope.value: scope.explanation for scope in Scope} == SIGNED_WORDS_ES
        terms = consent.form_terms()
        assert terms["revocation_statement"] == REVOCATION_ES
        assert terms["reliance_statement"] == RELIANCE_ES
        assert terms["redisclosure_notice"].startswith(NOTICE_ES_START)
        assert terms["redisclosure_notice"].endswith(NOTICE_ES_END)


def test_a_consent_signed_in_spanish_keeps_spanish_words_and_every_element(app_ctx, people, now):
    _, jordan = people
    record = consent.sign_consent(
        jordan,
        details(locale="es", scopes=["scheduling", "progress"], purpose="Coordinar la terapia."),
        now=now,
    )
    assert (record.locale, record.form_version) == ("es", consent.FORM_VERSION)
    snapshot = record.text_snapshot
    assert snapshot.startswith("CONSENTIMIENTO PARA COMPARTIR INFORMACIÓN CON UN FAMILIAR")
    for element in (
        "1. Paciente: Jordan Rivera",  # §2.31(a)(1)
        "2. Programa que comparte la información:",  # (a)(2)
        "3. Se comparte con: Maria Rivera (Mother), maria@example.org",  # (a)(4)
        "4. Para qué: Coordinar la terapia.",  # (a)(5)
        f"[x] {SIGNED_WORDS_ES['scheduling']}",  # (a)(3)
        f"[ ] {SIGNED_WORDS_ES['attendance']}",
        f"[x] {SIGNED_WORDS_ES['progress']}",
        REVOCATION_ES,  # (a)(6)
        RELIANCE_ES,
        "7. Este consentimiento termina: Al final del día 1 de mayo de 2027",  # (a)(7)
        NOTICE_ES_START,  # §2.32
        NOTICE_ES_END,
        "9. Firmado al escribir mi nombre completo: jordan rivera",  # (a)(8)
        "10. Fecha de la firma:",  # (a)(9)
    ):
        assert element in snapshot
    assert "they can see" not in snapshot and "Patient:" not in snapshot
    assert record.revocation_statement == f"{REVOCATION_ES} {RELIANCE_ES}"
    assert record.information_description == " ".join(
        (SIGNED_WORDS_ES["scheduling"], SIGNED_WORDS_ES["progress"])
    )


def test_the_invitation_keeps_the_language_the_patient_chose(app_ctx, people, now):
    _, jordan = people
    consent.sign_consent(jordan, details(locale="en", invitation_locale="es"), now=now)
    assert _invitation().locale == "es"


def test_the_invitation_email_speaks_the_chosen_language_not_the_patients(app_ctx, people, now):
    _, jordan = people  # Jordan reads English
    consent.sign_consent(jordan, details(locale="en", invitation_locale="es"), now=now)
    email = db.session.scalar(select(OutboxEmail).where(OutboxEmail.kind == "family_invitation"))
    assert email.subject == "Le invitamos a las sesiones de su familia"
    assert "Acepte la invitación" in email.text_body


def _invitation() -> AccountToken:
    return db.session.scalar(
        select(AccountToken).where(AccountToken.purpose == TokenPurpose.FAMILY_INVITE)
    )


def test_an_english_consent_is_unchanged(app_ctx, people, now):
    _, jordan = people
    record = consent.sign_consent(jordan, details(), now=now)
    assert record.locale == "en"
    assert record.text_snapshot.startswith(
        "CONSENT TO SHARE INFORMATION WITH A FAMILY MEMBER (form version 2)\n\n1. Patient: "
    )
    assert record.expiry_description == "At the end of May 1, 2027 (America/New York time)."
    assert _invitation().locale == "en"  # the invitation follows the form unless chosen


def test_an_episode_end_is_worded_in_the_form_language(app_ctx, people, now):
    _, jordan = people
    record = consent.sign_consent(
        jordan,
        details(locale="es", expiry_kind="episode_end", expiry_days_after_episode=1),
        now=now,
    )
    assert record.expiry_description == (
        "Cuando termine mi período de atención actual en el programa, más 1 día."
    )


@pytest.mark.parametrize("field", ["locale", "invitation_locale"])
def test_an_unknown_language_is_refused(app_ctx, people, now, field):
    _, jordan = people
    with pytest.raises(ValidationError) as refused:
        consent.sign_consent(jordan, details(**{field: "fr"}), now=now)
    assert refused.value.field == field


def test_paper_consent_keeps_the_language_of_the_paper_form(app_ctx, people, now):
    lee, jordan = people
    record = consent.record_paper_consent(
        lee, jordan.id, details(locale="es"), signed_on=date(2026, 11, 18), attested=True, now=now
    )
    assert record.locale == "es"
    assert "9. Firmado en papel como: jordan rivera" in record.text_snapshot
    assert "Dr. Grace Lee copió estos datos del formulario firmado en papel" in (
        record.text_snapshot
    )
