"""Consent pages through the test client: patient, therapist, family member, invitation."""

from datetime import timedelta

import pytest
from markupsafe import escape
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import (
    AuditEvent,
    ConsentRecord,
    FamilyLink,
    OutboxEmail,
    Role,
    Scope,
    User,
)
from familylink.services import consent
from tests.factories import PASSWORD, create_consent, create_user
from tests.moments import NOON
from tests.queries import count_rows

FORM = {
    "recipient_name": "Maria Rivera",
    "recipient_relationship": "Mother",
    "recipient_email": "maria@example.org",
    "scope_scheduling": "y",
    "scope_attendance": "y",
    "purpose": consent.DEFAULT_PURPOSE,
    "expiry_kind": "date",
    "expiry_date": "2027-05-01",
    "expiry_days_after_episode": "30",
    "signature_name": "JORDAN RIVERA",
    "understood": "y",
}


@pytest.fixture
def settings_override():
    return {"NOW_OVERRIDE": NOON}


@pytest.fixture
def ids(app):
    """Two therapists, a patient each, a consented family member and an unconnected one."""
    with app.app_context():
        lee = create_user(Role.THERAPIST, name="Dr. Grace Lee", email="lee@example.org")
        patel = create_user(Role.THERAPIST, name="Dr. Ravi Patel", email="patel@example.org")
        jordan = create_user(
            Role.PATIENT, name="Jordan Rivera", email="jordan@example.org", therapist=lee
        )
        casey = create_user(
            Role.PATIENT, name="Casey Nguyen", email="casey@example.org", therapist=patel
        )
        maria = create_user(Role.FAMILY, name="Maria Rivera", email="maria@example.org")
        drew = create_user(Role.FAMILY, name="Drew Hale", email="drew@example.org")
        record = create_consent(jordan, maria, scopes=("scheduling", "attendance"), now=NOON)
        db.session.commit()
        return {
            "lee": lee.id,
            "patel": patel.id,
            "jordan": jordan.id,
            "casey": casey.id,
            "maria": maria.id,
            "drew": drew.id,
            "consent": record.id,
        }


def _invitation_link(app, address: str) -> str:
    with app.app_context():
        email = db.session.scalars(
            select(OutboxEmail)
            .where(OutboxEmail.kind == "family_invitation", OutboxEmail.to_address == address)
            .order_by(OutboxEmail.id.desc())
        ).first()
        return "/family/join/" + email.text_body.split("/family/join/")[1].split()[0]


# --- The patient signs -------------------------------------------------------------------


def test_the_form_shows_every_element_and_the_snapshot_keeps_that_text(app, client, auth, ids):
    auth.login("jordan@example.org")
    page = client.get("/patient/consents/new").get_data(as_text=True)
    response = client.post(
        "/patient/consents/new",
        data={**FORM, "recipient_email": "luis@example.org", "recipient_name": "Luis Rivera"},
        headers={"User-Agent": "Phone browser"},
    )
    assert response.status_code == 302
    with app.app_context():
        record = db.session.scalar(
            select(ConsentRecord).where(ConsentRecord.recipient_email == "luis@example.org")
        )
        assert record.user_agent == "Phone browser" and record.ip
        for text in (
            consent.REVOCATION_STATEMENT,
            consent.RELIANCE_STATEMENT,
            consent.REDISCLOSURE_NOTICE,
            *consent.SCOPE_EXPLANATIONS.values(),
        ):
            assert str(escape(str(text))) in page
            assert str(text) in record.text_snapshot


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("recipient_name", "", "Enter the family member"),
        ("recipient_relationship", "", "Say how they are related to you"),
        ("recipient_email", "", "Enter their email address."),
        ("recipient_email", "maria-at-home", "Enter an email address like"),
        ("purpose", "", "Say what the information is for."),
        ("scope_scheduling", None, "Choose at least one kind of information"),
        ("expiry_kind", "", "Choose when this consent ends."),
        ("expiry_date", "", "Choose the date this consent ends."),
        ("expiry_date", "2030-01-01", "no more than one year"),
        ("signature_name", "", "Type your full name to sign."),
        ("signature_name", "Jordan Smith", "exactly as we have it"),
        ("understood", None, "Tick the box"),
    ],
)
def test_a_missing_element_gives_a_clear_error_and_stores_nothing(
    app, client, auth, ids, field, value, message
):
    auth.login("jordan@example.org")
    data = {**FORM, "recipient_email": "luis@example.org"}
    if field == "scope_scheduling":
        data.pop("scope_scheduling")
        data.pop("scope_attendance")
    elif value is None:
        data.pop(field)
    else:
        data[field] = value
    before = count_rows(app, ConsentRecord)
    response = client.post("/patient/consents/new", data=data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True).replace("&#39;", "'")
    assert count_rows(app, ConsentRecord) == before
    assert count_rows(app, OutboxEmail) == 0


def test_the_patient_sees_their_consents_and_can_print_one(app, client, auth, ids):
    auth.login("jordan@example.org")
    page = client.get("/patient/consents").get_data(as_text=True)
    assert "Maria Rivera" in page and "Revoke" in page
    printable = client.get(f"/patient/consents/{ids['consent']}").get_data(as_text=True)
    for text in ("Jordan Rivera", "Mother", "maria@example.org", "Coordinating", "Ends"):
        assert text in printable
    assert str(escape(str(consent.REDISCLOSURE_NOTICE))) in printable
    assert count_rows(app, AuditEvent, AuditEvent.action == "consent.viewed") == 1


def test_a_patient_cannot_open_another_patients_consent(app, client, auth, ids):
    with app.app_context():
        create_user(Role.PATIENT, email="riley@example.org")
        db.session.commit()
    auth.login("riley@example.org")
    for path in (
        f"/patient/consents/{ids['consent']}",
        f"/patient/consents/{ids['consent']}/revoke",
        f"/patient/consents/new?renew={ids['consent']}",
    ):
        assert client.get(path).status_code == 404
    assert client.post(f"/patient/consents/{ids['consent']}/revoke").status_code == 404


def test_revoking_in_the_portal_ends_the_family_members_access(app, client, auth, ids):
    auth.login("jordan@example.org")
    confirm = client.get(f"/patient/consents/{ids['consent']}/revoke")
    assert "end their access now" in confirm.get_data(as_text=True)
    assert client.post(f"/patient/consents/{ids['consent']}/revoke").status_code == 302
    auth.logout()
    auth.login("maria@example.org")
    assert client.get(f"/family/patients/{ids['jordan']}").status_code == 404
    assert "Jordan" not in client.get("/family/").get_data(as_text=True)


def test_renewing_prefills_and_supersedes(app, client, auth, ids):
    auth.login("jordan@example.org")
    page = client.get(f"/patient/consents/new?renew={ids['consent']}").get_data(as_text=True)
    assert 'value="maria@example.org"' in page
    assert client.post("/patient/consents/new", data=FORM).status_code == 302
    with app.app_context():
        newest = db.session.scalars(select(ConsentRecord).order_by(ConsentRecord.id.desc())).first()
        assert newest.supersedes_id == ids["consent"]


def test_what_was_shared_lists_disclosures(app, client, auth, ids):
    auth.login("maria@example.org")
    client.get(f"/family/patients/{ids['jordan']}")
    auth.logout()
    auth.login("jordan@example.org")
    page = client.get("/patient/shared").get_data(as_text=True)
    assert "Maria Rivera" in page and "patient page" in page


# --- The family member -------------------------------------------------------------------


def test_the_family_home_lists_first_names_and_what_is_allowed(app, client, auth, ids):
    auth.login("maria@example.org")
    page = client.get("/family/").get_data(as_text=True)
    # In plain words: the explanation the consent form gives, not only its label.
    assert "Jordan" in page and f"<li>{Scope.ATTENDANCE.explanation}</li>" in page
    assert "Jordan Rivera" not in page


def test_the_family_patient_page_carries_the_notice_and_is_audited(app, client, auth, ids):
    auth.login("maria@example.org")
    response = client.get(f"/family/patients/{ids['jordan']}")
    assert response.status_code == 200
    assert str(escape(str(consent.REDISCLOSURE_NOTICE))) in response.get_data(as_text=True)
    assert (
        count_rows(
            app,
            AuditEvent,
            AuditEvent.action == "disclosure.viewed",
            AuditEvent.recipient_id == ids["maria"],
        )
        >= 1
    )


@pytest.mark.parametrize("who", ["jordan", "casey", "maria", "lee", 0, 99999])
def test_a_family_member_without_consent_gets_404_for_any_patient_id(app, client, auth, ids, who):
    auth.login("drew@example.org")
    patient_id = ids.get(who, who) if isinstance(who, str) else who
    assert client.get(f"/family/patients/{patient_id}").status_code == 404


def test_access_ends_at_the_expiry_instant_on_the_page(app, make_app, ids):
    with app.app_context():
        record = db.session.get(ConsentRecord, ids["consent"])
        end = record.expires_at
    for instant, status in ((end - timedelta(seconds=1), 200), (end, 404)):
        other = make_app(NOW_OVERRIDE=instant)
        client = other.test_client()
        client.post("/login", data={"email": "maria@example.org", "password": PASSWORD})
        assert client.get(f"/family/patients/{ids['jordan']}").status_code == status


# --- The therapist -----------------------------------------------------------------------


def test_a_therapist_sees_their_own_patients_family_contacts(app, client, auth, ids):
    auth.login("lee@example.org")
    page = client.get(f"/therapist/patients/{ids['jordan']}/family").get_data(as_text=True)
    for text in (
        "Maria Rivera",
        "Mother",
        "maria@example.org",
        "Family session times, Attendance",
        "active",
    ):
        assert text in page


@pytest.mark.parametrize(
    "path",
    [
        "/therapist/patients/{casey}/family",
        "/therapist/patients/{casey}/consents/paper",
        "/therapist/patients/{maria}/family",
        "/therapist/patients/99999/family",
    ],
)
def test_a_therapist_gets_404_for_anyone_not_their_patient(app, client, auth, ids, path):
    auth.login("lee@example.org")
    assert client.get(path.format(**ids)).status_code == 404


def test_a_therapist_cannot_open_or_revoke_another_therapists_consent(app, client, auth, ids):
    auth.login("patel@example.org")
    assert client.get(f"/therapist/consents/{ids['consent']}").status_code == 404
    assert (
        client.post(
            f"/therapist/consents/{ids['consent']}/revoke", data={"note": "letter"}
        ).status_code
        == 404
    )


def test_a_therapist_records_a_paper_consent(app, client, auth, ids):
    auth.login("lee@example.org")
    response = client.post(
        f"/therapist/patients/{ids['jordan']}/consents/paper",
        data={
            **FORM,
            "recipient_email": "luis@example.org",
            "signed_on": "2026-11-17",
            "attested": "y",
        },
    )
    assert response.status_code == 302
    with app.app_context():
        record = db.session.scalars(select(ConsentRecord).order_by(ConsentRecord.id.desc())).first()
        assert (record.method, record.recorded_by_id) == ("paper", ids["lee"])


def test_a_paper_consent_sent_twice_is_recorded_once(app, client, auth, ids):
    auth.login("lee@example.org")
    url = f"/therapist/patients/{ids['jordan']}/consents/paper"
    data = {**FORM, "recipient_email": "luis@example.org", "signed_on": "2026-11-17"}
    assert client.post(url, data={**data, "attested": "y"}).status_code == 302
    again = client.post(url, data={**data, "attested": "y"})
    assert again.status_code == 400
    assert "This consent is already recorded." in again.get_data(as_text=True)
    to_luis = ConsentRecord.recipient_email == "luis@example.org"
    assert count_rows(app, ConsentRecord, to_luis) == 1
    assert count_rows(app, ConsentRecord, to_luis, ConsentRecord.supersedes_id.is_not(None)) == 0
    assert count_rows(app, OutboxEmail, OutboxEmail.to_address == "luis@example.org") == 1


def test_a_paper_consent_to_someone_already_linked_says_no_invitation_is_sent(
    app, client, auth, ids
):
    auth.login("lee@example.org")
    response = client.post(
        f"/therapist/patients/{ids['jordan']}/consents/paper",
        data={**FORM, "signed_on": NOON.date().isoformat(), "attested": "y"},
        follow_redirects=True,
    )
    body = response.get_data(as_text=True)
    assert "Maria Rivera is already linked, so no invitation is sent" in body
    assert "the invitation is on its way" not in body
    with app.app_context():
        kinds = db.session.scalars(select(OutboxEmail.kind)).all()
    assert "family_invitation" not in kinds


def test_a_paper_consent_without_attestation_is_refused(app, client, auth, ids):
    auth.login("lee@example.org")
    response = client.post(
        f"/therapist/patients/{ids['jordan']}/consents/paper",
        data={**FORM, "recipient_email": "luis@example.org", "signed_on": "2026-11-17"},
    )
    assert response.status_code == 400
    assert "Tick the box to confirm the patient signed" in response.get_data(as_text=True)
    assert count_rows(app, ConsentRecord) == 1


def test_a_therapist_records_a_written_revocation(app, client, auth, ids):
    auth.login("lee@example.org")
    response = client.post(
        f"/therapist/consents/{ids['consent']}/revoke", data={"note": "Letter of 17 November"}
    )
    assert response.status_code == 302
    with app.app_context():
        assert not consent.may_disclose(ids["maria"], ids["jordan"], None, now=NOON)


def _record_written_revocation(client, auth, consent_id: int) -> str:
    auth.login("lee@example.org")
    response = client.post(
        f"/therapist/consents/{consent_id}/revoke",
        data={"note": "Letter of 17 November"},
        follow_redirects=True,
    )
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_a_written_revocation_says_access_is_gone_when_no_other_consent_grants_it(
    app, client, auth, ids
):
    said = _record_written_revocation(client, auth, ids["consent"])
    assert "Maria Rivera no longer has access" in said


def test_a_written_revocation_says_which_other_consent_still_grants_access(app, client, auth, ids):
    with app.app_context():
        jordan, maria = db.session.get(User, ids["jordan"]), db.session.get(User, ids["maria"])
        create_consent(jordan, maria, scopes=("scheduling",), now=NOON - timedelta(days=2))
        db.session.commit()
    said = _record_written_revocation(client, auth, ids["consent"])
    assert "no longer has access" not in said
    assert "another consent, signed on" in said and "family session times" in said
    with app.app_context():
        assert consent.may_disclose(ids["maria"], ids["jordan"], Scope.SCHEDULING, now=NOON)


def test_a_written_revocation_is_confirmed_in_the_therapists_language(app, client, auth, ids):
    with app.app_context():
        db.session.get(User, ids["lee"]).locale = "es"
        db.session.commit()
    said = _record_written_revocation(client, auth, ids["consent"])
    assert "Maria Rivera ya no tiene acceso" in said


# --- Invitations -------------------------------------------------------------------------


def _sign_for(client, auth, address: str, name: str = "Luis Rivera"):
    auth.login("jordan@example.org")
    data = {**FORM, "recipient_email": address, "recipient_name": name}
    assert client.post("/patient/consents/new", data=data).status_code == 302
    auth.logout()


def test_a_new_family_member_registers_through_the_invitation(app, client, auth, ids):
    _sign_for(client, auth, "luis@example.org")
    link = _invitation_link(app, "luis@example.org")
    page = client.get(link).get_data(as_text=True)
    assert 'value="luis@example.org" readonly' in page
    response = client.post(
        link,
        data={
            "name": "Luis Rivera",
            "password": "lantern orchard pebble",
            "timezone": "America/Chicago",
            "email": "attacker@example.org",  # ignored: the address is the invitation's
        },
    )
    assert response.status_code == 302
    assert "Jordan" in client.get("/family/").get_data(as_text=True)
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "luis@example.org"))
        assert user.verified_at is not None
        assert db.session.scalar(select(User).where(User.email == "attacker@example.org")) is None


def test_an_existing_account_is_linked_after_signing_in(app, client, auth, ids):
    with app.app_context():
        create_user(Role.FAMILY, email="luis@example.org")
        db.session.commit()
    _sign_for(client, auth, "luis@example.org")
    link = _invitation_link(app, "luis@example.org")
    assert "Sign in to accept" in client.get(link).get_data(as_text=True)
    auth.login("luis@example.org")
    assert client.get(link).status_code == 200
    assert client.post(link).status_code == 302
    with app.app_context():
        luis = db.session.scalar(select(User).where(User.email == "luis@example.org"))
    assert count_rows(app, FamilyLink, FamilyLink.family_user_id == luis.id) == 1
    assert count_rows(app, ConsentRecord, ConsentRecord.recipient_user_id == luis.id) == 1
    # Single use.
    assert client.post(link).status_code == 400


def test_someone_signed_in_with_another_address_is_refused(app, client, auth, ids):
    _sign_for(client, auth, "luis@example.org")
    link = _invitation_link(app, "luis@example.org")
    auth.login("drew@example.org")
    response = client.post(link)
    assert response.status_code == 403
    assert "different email address" in response.get_data(as_text=True)
    assert count_rows(app, FamilyLink, FamilyLink.family_user_id == ids["drew"]) == 0


def test_an_expired_invitation_is_refused(app, make_app, client, auth, ids):
    _sign_for(client, auth, "luis@example.org")
    link = _invitation_link(app, "luis@example.org")
    later = make_app(NOW_OVERRIDE=NOON + timedelta(days=15)).test_client()
    assert later.get(link).status_code == 400


# --- Each scope's words come from Scope ----------------------------------------------------


def test_the_form_the_printable_copy_and_the_family_page_show_scope_explanations(
    app, client, auth, ids
):
    """One set of words per scope: what the patient ticks is what is printed and what the
    family member is told."""
    auth.login("jordan@example.org")
    form = client.get("/patient/consents/new").get_data(as_text=True)
    for scope in Scope:
        assert str(escape(scope.explanation)) in form
        assert f">{scope.label}</label>" in form
    data = {**FORM, "recipient_email": "luis@example.org", "recipient_name": "Luis Rivera"}
    data.pop("scope_attendance")  # the printable copy must show only what was chosen
    assert client.post("/patient/consents/new", data=data).status_code == 302
    with app.app_context():
        signed = db.session.scalar(
            select(ConsentRecord).where(ConsentRecord.recipient_email == "luis@example.org")
        )
        signed_id, chosen = signed.id, signed.scopes
    printable = client.get(f"/patient/consents/{signed_id}").get_data(as_text=True)
    for scope in Scope:
        box = "x" if scope in chosen else " "
        assert str(escape(f"[{box}] {scope.explanation}")) in printable
    client.post("/logout")
    auth.login("maria@example.org")
    family_page = client.get(f"/family/patients/{ids['jordan']}").get_data(as_text=True)
    for scope in (Scope.SCHEDULING, Scope.ATTENDANCE):
        assert str(escape(scope.explanation)) in family_page
    assert str(escape(Scope.PROGRESS.explanation)) not in family_page


# --- The person, not the address (issue 16, point 2) ---------------------------------------


def _join_as_luis(app, client, auth, ids) -> int:
    """Jordan consents (scheduling and attendance) to luis@, who registers from the link."""
    _sign_for(client, auth, "luis@example.org")
    link = _invitation_link(app, "luis@example.org")
    form = {
        "name": "Luis Rivera",
        "password": "lantern orchard pebble",
        "timezone": "America/Chicago",
    }
    assert client.post(link, data=form).status_code == 302
    with app.app_context():
        return db.session.scalar(select(User.id).where(User.email == "luis@example.org"))


def _change_email(app, client, new_address: str) -> None:
    """The signed-in person changes their address from the account page."""
    data = {"new_email": new_address, "password": "lantern orchard pebble"}
    assert client.post("/account/email", data=data).status_code == 302
    with app.app_context():
        verify = db.session.scalars(
            select(OutboxEmail)
            .where(OutboxEmail.kind == "email_change_verify", OutboxEmail.to_address == new_address)
            .order_by(OutboxEmail.id.desc())
        ).first()
    token = verify.text_body.split("/email-change/")[1].split()[0]
    assert client.post(f"/email-change/{token}").status_code == 302


def _luis_seat(app, ids, luis_id: int) -> int:
    from tests.booking_setup import add_appointment, create_session_types

    with app.app_context():
        private, _group = create_session_types()
        therapist, patient = db.session.get(User, ids["lee"]), db.session.get(User, ids["jordan"])
        luis = db.session.get(User, luis_id)
        seat = add_appointment(
            therapist,
            patient,
            luis,
            private,
            starts_at=NOON + timedelta(days=3),
            booked_at=NOON - timedelta(hours=1),
        )
        return seat.id


def test_after_an_email_change_a_new_consent_narrows_and_its_revocation_ends_access(
    app, client, auth, ids
):
    luis_id = _join_as_luis(app, client, auth, ids)
    seat_id = _luis_seat(app, ids, luis_id)
    _change_email(app, client, "luis.new@example.org")
    auth.logout()
    # Jordan signs a narrower consent (scheduling only) to Luis's new address.
    auth.login("jordan@example.org")
    narrower = {**FORM, "recipient_email": "luis.new@example.org", "recipient_name": "Luis"}
    del narrower["scope_attendance"]
    assert client.post("/patient/consents/new", data=narrower).status_code == 302
    auth.logout()
    auth.login("luis.new@example.org", "lantern orchard pebble")
    page = client.get(f"/family/patients/{ids['jordan']}").get_data(as_text=True)
    assert str(Scope.SCHEDULING.label) in page
    assert str(Scope.ATTENDANCE.label) not in page  # the new consent decides, not the old one
    with app.app_context():
        assert not consent.may_disclose(luis_id, ids["jordan"], Scope.ATTENDANCE, now=NOON)
        newest = db.session.scalars(select(ConsentRecord).order_by(ConsentRecord.id.desc())).first()
    auth.logout()
    # Jordan revokes the new consent: Luis's access is really gone.
    auth.login("jordan@example.org")
    assert client.post(f"/patient/consents/{newest.id}/revoke").status_code == 302
    auth.logout()
    auth.login("luis.new@example.org", "lantern orchard pebble")
    assert client.get(f"/family/patients/{ids['jordan']}").status_code == 404
    assert client.get(f"/booking/{seat_id}").status_code == 404
    assert "Jordan" not in client.get("/family/").get_data(as_text=True)
    with app.app_context():
        assert not consent.may_disclose(luis_id, ids["jordan"], None, now=NOON)


def test_revoking_warns_while_another_consent_still_grants_access_and_says_which(
    app, client, auth, ids
):
    with app.app_context():
        jordan, maria = db.session.get(User, ids["jordan"]), db.session.get(User, ids["maria"])
        # Two consents in force for one person (as existing data may hold after migrating).
        other = create_consent(jordan, maria, scopes=("scheduling",), now=NOON - timedelta(days=2))
        db.session.commit()
        other_id = other.id
    auth.login("jordan@example.org")
    page = client.get(f"/patient/consents/{ids['consent']}/revoke").get_data(as_text=True)
    assert "Another consent, signed on" in page and "still lets Maria Rivera see" in page
    assert f"/patient/consents/{other_id}/revoke" in page
    response = client.post(f"/patient/consents/{ids['consent']}/revoke", follow_redirects=True)
    said = response.get_data(as_text=True)
    assert "no longer has access" not in said
    assert "another consent, signed on" in said and "family session times" in said
    auth.logout()
    auth.login("maria@example.org")
    assert client.get(f"/family/patients/{ids['jordan']}").status_code == 200
    auth.logout()
    # Revoking the last one says access is gone, and it is.
    auth.login("jordan@example.org")
    page = client.get(f"/patient/consents/{other_id}/revoke").get_data(as_text=True)
    assert "Another consent" not in page
    response = client.post(f"/patient/consents/{other_id}/revoke", follow_redirects=True)
    assert "Maria Rivera no longer has access" in response.get_data(as_text=True)
    auth.logout()
    auth.login("maria@example.org")
    assert client.get(f"/family/patients/{ids['jordan']}").status_code == 404


def test_an_invitation_pending_at_an_email_change_is_accepted_at_the_new_address(
    app, client, auth, ids
):
    with app.app_context():
        create_user(Role.FAMILY, email="luis@example.org")
        db.session.commit()
    _sign_for(client, auth, "luis@example.org")
    link = _invitation_link(app, "luis@example.org")
    auth.login("luis@example.org")
    data = {"new_email": "luis.new@example.org", "password": PASSWORD}
    assert client.post("/account/email", data=data).status_code == 302
    with app.app_context():
        verify = db.session.scalar(
            select(OutboxEmail).where(OutboxEmail.kind == "email_change_verify")
        )
    token = verify.text_body.split("/email-change/")[1].split()[0]
    assert client.post(f"/email-change/{token}").status_code == 302
    auth.logout()
    # Signed out, the link asks for the account, and registering the old address fails.
    page = client.get(link).get_data(as_text=True)
    assert "kept for the account" in page and "Create account and accept" not in page
    form = {"name": "Someone", "password": "lantern orchard pebble", "timezone": "UTC"}
    assert client.post(link, data=form).status_code != 302
    assert count_rows(app, User, User.email == "luis@example.org") == 0
    auth.login("luis.new@example.org")
    assert client.post(link).status_code == 302
    assert "Jordan" in client.get("/family/").get_data(as_text=True)


def test_a_consent_ending_at_midnight_reads_as_its_last_day_on_pages(app, client, auth, ids):
    """A consent to a date ends at the midnight after that day: pages name that day, not
    the next day's date."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from familylink.models import Role
    from tests.factories import create_consent, create_user

    # Both readers (the member and Dr. Lee) are in New York: it is midnight where they read.
    ends = datetime(2027, 5, 2, 0, 0, tzinfo=ZoneInfo("America/New_York"))
    with app.app_context():
        jordan = db.session.get(User, ids["jordan"])
        member = create_user(Role.FAMILY, name="Robin Vale", email="robin@example.org")
        create_consent(jordan, member, expires_at=ends)
        db.session.commit()
    last_day, next_day = "Saturday, May 1, 2027", "May 2, 2027"
    auth.login("robin@example.org")
    page = client.get(f"/family/patients/{ids['jordan']}").get_data(as_text=True)
    assert last_day in page and next_day not in page
    auth.logout()
    auth.login("lee@example.org")
    page = client.get(f"/therapist/patients/{ids['jordan']}/family").get_data(as_text=True)
    assert last_day in page and next_day not in page


def test_the_patients_own_pages_name_the_last_day_they_chose(app, client, auth, ids):
    """The patient signs "through December 10": "My family's access" and the printable copy
    say it ends at the end of that day, as every other page does, never on December 11."""
    from datetime import date

    from tests.factories import consent_details

    with app.app_context():
        jordan = db.session.get(User, ids["jordan"])
        details = consent_details(
            recipient_name="Robin Vale",
            recipient_email="robin@example.org",
            expiry_date=date(2026, 12, 10),
            signature_name="Jordan Rivera",
        )
        record = consent.sign_consent(jordan, details, now=NOON)
        db.session.commit()
        record_id = record.id
    auth.login("jordan@example.org")
    page = client.get("/patient/consents").get_data(as_text=True)
    ends = page.split("Robin Vale")[1].split("Ends:")[1].split("</p>")[0]
    assert "the end of Thursday, December 10, 2026" in ends and "December 11" not in ends
    printable = client.get(f"/patient/consents/{record_id}").get_data(as_text=True)
    ends = printable.split("<dt>Ends</dt>")[1].split("</dd>")[0]
    assert "the end of Thursday, December 10, 2026" in ends and "December 11" not in ends


def test_an_episode_paper_consent_signed_in_an_ended_episode_is_refused_beside_the_date(
    app, client, auth, ids
):
    from datetime import date

    from familylink.services import episodes

    with app.app_context():
        lee = db.session.get(User, ids["lee"])
        episodes.discharge(
            lee, ids["jordan"], ended_on=date(2026, 11, 8), reason="completed", now=NOON
        )
        episodes.readmit(lee, ids["jordan"], started_on=date(2026, 11, 15), now=NOON)
        db.session.commit()
    auth.login("lee@example.org")
    response = client.post(
        f"/therapist/patients/{ids['jordan']}/consents/paper",
        data={
            **FORM,
            "recipient_email": "luis@example.org",
            "expiry_kind": "episode_end",
            "expiry_days_after_episode": "0",
            "signed_on": "2026-11-06",
            "attested": "y",
        },
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert str(escape("This date is not in the patient's current episode of care")) in page
    assert "on its way" not in page
    assert count_rows(app, ConsentRecord) == 1
    assert count_rows(app, OutboxEmail, OutboxEmail.kind == "family_invitation") == 0


def test_after_a_revoked_invitation_the_invited_persons_home_says_none_waits(
    app, client, auth, ids
):
    with app.app_context():
        create_user(Role.FAMILY, name="Luis Rivera", email="luis@example.org")
        db.session.commit()
    _sign_for(client, auth, "luis@example.org")
    auth.login("luis@example.org")
    assert "An invitation is waiting for you." in client.get("/family/").get_data(as_text=True)
    auth.logout()
    with app.app_context():
        record = db.session.scalar(
            select(ConsentRecord).where(ConsentRecord.recipient_email == "luis@example.org")
        )
        record_id = record.id
    auth.login("jordan@example.org")
    assert client.post(f"/patient/consents/{record_id}/revoke").status_code == 302
    auth.logout()
    auth.login("luis@example.org")
    assert "An invitation is waiting for you." not in client.get("/family/").get_data(as_text=True)
    with app.app_context():
        told = db.session.scalars(
            select(OutboxEmail.kind).where(OutboxEmail.to_address == "luis@example.org")
        ).all()
    assert "family_access_ended" not in told


def test_submitting_the_same_consent_twice_sends_one_invitation(app, client, auth, ids):
    _sign_for(client, auth, "luis@example.org")
    first = _invitation_link(app, "luis@example.org")
    _sign_for(client, auth, "luis@example.org")
    with app.app_context():
        pending = db.session.scalars(
            select(OutboxEmail).where(
                OutboxEmail.kind == "family_invitation", OutboxEmail.status == "pending"
            )
        ).all()
    assert len(pending) == 1
    assert client.get(first).status_code == 400  # the first link opens nothing
    assert client.get(_invitation_link(app, "luis@example.org")).status_code == 200
