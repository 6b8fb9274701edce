"""The admin's accounts page: search, pages, disable/enable, two-step reset, each audited."""

import re

import pytest
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import AuditEvent, Role, User
from tests.conftest import AuthActions
from tests.factories import create_user, saved_user


def _events(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def _user(app, user_id: int) -> User:
    with app.app_context():
        return db.session.get(User, user_id)


def _admin_id(app) -> int:
    with app.app_context():
        return db.session.scalar(select(User.id).where(User.email == "admin@example.org"))


def test_the_admin_searches_by_a_part_of_a_name_or_an_address(app, admin_client):
    saved_user(app, name="Maria Rivera", email="maria@example.org")
    saved_user(app, Role.THERAPIST, name="Lee Park", email="lee.RIVERS@example.org")
    saved_user(app, name="Sam Other", email="sam@example.org")
    page = admin_client.get("/admin/accounts", query_string={"q": "river"}).get_data(as_text=True)
    assert "Maria Rivera" in page and "Lee Park" in page and "Sam Other" not in page
    assert "2 accounts found." in page
    page = admin_client.get(
        "/admin/accounts", query_string={"q": "river", "role": "therapist"}
    ).get_data(as_text=True)
    assert "Lee Park" in page and "Maria Rivera" not in page
    # The row says what the admin needs: role, whether they can sign in, two-step sign-in.
    assert re.search(r"Therapist</td>\s*<td>Yes</td>\s*<td>On</td>", page)


def test_fifty_accounts_a_page_with_links_to_the_next(app, admin_client):
    with app.app_context():
        for n in range(60):
            create_user(Role.FAMILY, name=f"Member {n:03d}", email=f"m{n}@example.org")
        db.session.commit()
    first = admin_client.get("/admin/accounts").get_data(as_text=True)
    assert first.count("<tr>") == 51  # the header and fifty rows
    assert "Page 1 of 2" in first and 'rel="next"' in first
    second = admin_client.get("/admin/accounts?page=2").get_data(as_text=True)
    assert "Member 059" in second and "Member 000" not in second
    assert 'rel="prev"' in second and 'rel="next"' not in second


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"page": "0"}, "Use a page number."),
        ({"page": "abc"}, "Not a valid integer value."),
        ({"page": "99999999999999999999"}, "Use a page number."),
        ({"role": "superuser"}, "Choose one of the options shown."),
        ({"q": "x" * 101}, "Use at most 100 characters."),
    ],
)
def test_bad_search_input_gets_a_message_not_an_error(admin_client, query, message):
    response = admin_client.get("/admin/accounts", query_string=query)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Please check the field" in page and message in page


def test_disabling_signs_the_person_out_everywhere_and_is_audited(app, admin_client):
    member_id = saved_user(app, name="Maria Rivera", email="maria@example.org")
    member = app.test_client()
    AuthActions(member, app).login("maria@example.org")
    assert member.get("/family/").status_code == 200
    response = admin_client.post(
        f"/admin/accounts/{member_id}/active", data={"active": "0"}, follow_redirects=True
    )
    assert "Maria Rivera is disabled and signed out everywhere." in response.get_data(as_text=True)
    assert not _user(app, member_id).active
    assert member.get("/family/").status_code == 302  # their session ended
    (event,) = _events(app, "account.disabled")
    assert (event.actor_id, event.object_id) == (_admin_id(app), member_id)
    admin_client.post(f"/admin/accounts/{member_id}/active", data={"active": "1"})
    assert _user(app, member_id).active
    assert len(_events(app, "account.enabled")) == 1


@pytest.mark.parametrize(
    ("active", "said"),
    [("1", "Maria Rivera can already sign in."), ("0", "Maria Rivera is already disabled.")],
)
def test_enabling_or_disabling_what_already_is_so_says_so_and_audits_nothing(
    app, admin_client, active, said
):
    member_id = saved_user(app, name="Maria Rivera", email="maria@example.org")
    if active == "0":
        admin_client.post(
            f"/admin/accounts/{member_id}/active", data={"active": "0"}, follow_redirects=True
        )
    before = len(_events(app, "account.enabled")) + len(_events(app, "account.disabled"))
    response = admin_client.post(
        f"/admin/accounts/{member_id}/active", data={"active": active}, follow_redirects=True
    )
    page = response.get_data(as_text=True)
    assert said in page and "signed out everywhere" not in page and "can sign in again" not in page
    assert len(_events(app, "account.enabled")) + len(_events(app, "account.disabled")) == before


def test_the_admin_cannot_disable_themselves(app, admin_client):
    saved_user(app, Role.ADMIN, email="other-admin@example.org")
    admin_id = _admin_id(app)
    response = admin_client.post(
        f"/admin/accounts/{admin_id}/active", data={"active": "0"}, follow_redirects=True
    )
    assert "You can&#39;t disable your own account." in response.get_data(as_text=True)
    assert _user(app, admin_id).active
    assert admin_client.get("/admin/accounts").status_code == 200  # still signed in


def test_the_only_active_admin_is_told_they_cannot_disable_themselves(app, admin_client):
    # On the page the last active admin is always the one signed in; the command line's
    # refusal is in tests/unit/test_account_commands.py.
    admin_id = _admin_id(app)
    response = admin_client.post(
        f"/admin/accounts/{admin_id}/active", data={"active": "0"}, follow_redirects=True
    )
    assert "You can&#39;t disable your own account." in response.get_data(as_text=True)
    assert _user(app, admin_id).active


def test_resetting_two_step_asks_first_then_makes_staff_enrol_again(app, admin_client):
    lee = saved_user(app, Role.THERAPIST, name="Lee Park", email="lee@example.org")
    therapist = app.test_client()
    AuthActions(therapist, app).login("lee@example.org")
    confirm = admin_client.get(f"/admin/accounts/{lee}/two-step").get_data(as_text=True)
    assert "Reset two-step sign-in of Lee Park" in confirm
    assert "set it up again at their next sign-in" in confirm
    assert _user(app, lee).mfa_enabled  # looking at the question changes nothing
    response = admin_client.post(f"/admin/accounts/{lee}/two-step", follow_redirects=True)
    assert "Two-step sign-in of Lee Park is cleared" in response.get_data(as_text=True)
    assert not _user(app, lee).mfa_enabled
    assert therapist.get("/therapist/").status_code == 302
    AuthActions(therapist, app).login("lee@example.org")
    response = therapist.get("/therapist/")
    assert response.status_code == 302 and response.location.endswith("/account/mfa")
    (event,) = _events(app, "mfa.reset")
    assert (event.actor_id, event.object_id) == (_admin_id(app), lee)


def test_resetting_two_step_of_someone_without_it_says_so_and_audits_nothing(app, admin_client):
    member_id = saved_user(app, name="Maria Rivera", email="maria@example.org")
    response = admin_client.post(f"/admin/accounts/{member_id}/two-step", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "Maria Rivera has no two-step sign-in to reset." in page and "is cleared" not in page
    assert _events(app, "mfa.reset") == []


def test_listing_patients_is_audited_as_a_view_of_each_patient_shown(app, admin_client):
    with app.app_context():
        lee = create_user(Role.THERAPIST)
        patient = create_user(Role.PATIENT, therapist=lee, name="Jordan Zyxwvutsky")
        create_user(Role.FAMILY)
        db.session.commit()
        patient_id = patient.id
    page = admin_client.get("/admin/accounts?role=patient").get_data(as_text=True)
    assert "Jordan Zyxwvutsky" in page
    views = _events(app, "patient_data.viewed")
    assert [(v.patient_id, v.detail["page"]) for v in views] == [(patient_id, "accounts")]
    (listed,) = _events(app, "accounts.listed")
    assert listed.actor_id == _admin_id(app) and listed.detail["role"] == "patient"
    # Opening a patient's reset page is a view too.
    admin_client.get(f"/admin/accounts/{patient_id}/two-step")
    assert [v.detail["page"] for v in _events(app, "patient_data.viewed")] == [
        "accounts",
        "account",
    ]


@pytest.mark.parametrize("role", [Role.THERAPIST, Role.FAMILY, Role.PATIENT])
def test_no_one_else_reaches_the_page_or_the_buttons(app, client, auth, role):
    victim = saved_user(app, email="victim@example.org")
    with app.app_context():
        lee = create_user(Role.THERAPIST, email="lee@example.org")
        create_user(
            role, email="asker@example.org", therapist=lee if role == Role.PATIENT else None
        )
        db.session.commit()
    auth.login("asker@example.org")
    assert client.get("/admin/accounts").status_code == 404
    assert client.post(f"/admin/accounts/{victim}/active", data={"active": "0"}).status_code == 404
    assert client.post(f"/admin/accounts/{victim}/two-step").status_code == 404
    assert _user(app, victim).active


def test_signed_out_people_are_sent_to_sign_in(client):
    response = client.get("/admin/accounts")
    assert response.status_code == 302 and "/login" in response.location


@pytest.mark.parametrize("bad", ["987654", "0", "2147483648", "99999999999999999999999", "-1"])
def test_hostile_ids_are_not_found_and_change_nothing(app, admin_client, bad):
    before = len(_events(app, "account.disabled"))
    assert (
        admin_client.post(f"/admin/accounts/{bad}/active", data={"active": "0"}).status_code == 404
    )
    assert admin_client.get(f"/admin/accounts/{bad}/two-step").status_code == 404
    assert admin_client.post(f"/admin/accounts/{bad}/two-step").status_code == 404
    assert len(_events(app, "account.disabled")) == before
