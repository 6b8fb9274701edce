"""The operations on accounts that the admin's page and `flask account` share."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import AuditEvent, Role, UserSession
from familylink.services import account_admin, mfa, sessions
from familylink.services.errors import Conflict, NotFound, ValidationError


def _actions(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_search_finds_a_part_of_a_name_or_an_address_in_any_case(create_user, now):
    admin = create_user(Role.ADMIN, name="Alex Admin", email="alex@example.org")
    create_user(Role.FAMILY, name="Maria Rivera", email="maria@example.org")
    create_user(Role.FAMILY, name="Sam Lee", email="sam.RIVERSIDE@example.org")
    create_user(Role.FAMILY, name="Robin 100%_off", email="robin@example.org")
    create_user(Role.FAMILY, name="Kim O/Neil \\ Ray", email="kim@example.org")

    def names(search, role=None):
        found = account_admin.list_accounts(admin, search=search, role=role, now=now)
        return [row.user.name for row in found.rows]

    assert names("RIVER") == ["Maria Rivera", "Sam Lee"]
    assert names("riverside@") == ["Sam Lee"]
    assert names("%") == ["Robin 100%_off"]  # a wildcard is a plain character
    assert names("_") == ["Robin 100%_off"]
    assert names("o/n") == ["Kim O/Neil \\ Ray"]  # and so are the escape characters
    assert names("\\") == ["Kim O/Neil \\ Ray"]
    assert names("", role=Role.ADMIN) == ["Alex Admin"]
    assert names("nobody") == []


def test_the_list_is_paged_by_fifty_and_a_page_past_the_end_shows_the_last(create_user, now):
    admin = create_user(Role.ADMIN, name="Aaron Admin")
    for n in range(120):
        create_user(Role.FAMILY, name=f"Member {n:03d}")
    first = account_admin.list_accounts(admin, now=now)
    assert (first.total, first.pages, len(first.rows)) == (121, 3, 50)
    last = account_admin.list_accounts(admin, page=99, now=now)
    assert last.page == 3 and len(last.rows) == 21
    assert last.rows[-1].user.name == "Member 119"


def test_the_list_shows_the_last_sign_in_and_audits_each_patient_shown(create_user, now):
    admin = create_user(Role.ADMIN)
    therapist = create_user(Role.THERAPIST)
    patient = create_user(Role.PATIENT, therapist=therapist)
    family = create_user(Role.FAMILY)
    sessions.start_session(family, now=now - timedelta(days=2))
    sessions.start_session(family, now=now - timedelta(hours=1))
    found = account_admin.list_accounts(admin, now=now)
    last = {row.user.id: row.last_sign_in for row in found.rows}
    assert last[family.id] == now - timedelta(hours=1)
    assert last[patient.id] is None
    db.session.commit()  # rows recorded outside an action are written at the commit
    views = _actions("patient_data.viewed")
    assert [(v.actor_id, v.patient_id, v.detail["page"]) for v in views] == [
        (admin.id, patient.id, "accounts")
    ]
    (listed,) = _actions("accounts.listed")
    assert listed.actor_id == admin.id and listed.detail["shown"] == 4
    assert "searched" in listed.detail and "search" not in listed.detail  # never the text


def test_disabling_ends_every_session_at_once_and_is_audited(create_user, now):
    admin = create_user(Role.ADMIN)
    member = create_user(Role.FAMILY)
    sessions.start_session(member, now=now)
    sessions.start_session(member, now=now)
    account_admin.set_account_active(member, False, actor=admin, now=now)
    assert not member.active
    open_sessions = db.session.scalars(
        select(UserSession).where(UserSession.user_id == member.id, UserSession.ended_at.is_(None))
    ).all()
    assert open_sessions == []
    account_admin.set_account_active(member, True, actor=admin, now=now)
    assert member.active
    assert [e.actor_id for e in _actions("account.disabled")] == [admin.id]
    assert [e.object_id for e in _actions("account.enabled")] == [member.id]


def test_nobody_disables_their_own_account(create_user, now):
    admin = create_user(Role.ADMIN)
    create_user(Role.ADMIN)
    with pytest.raises(ValidationError, match="your own account"):
        account_admin.set_account_active(admin, False, actor=admin, now=now)
    assert admin.active


def test_the_last_active_admin_cannot_be_disabled(create_user, now):
    admin = create_user(Role.ADMIN)
    other = create_user(Role.ADMIN)
    account_admin.set_account_active(other, False, actor=admin, now=now)
    # From the command line too (no actor): nobody could manage the program any more.
    with pytest.raises(Conflict, match="last active admin"):
        account_admin.set_account_active(admin, False, actor=None, now=now)
    assert admin.active


def test_resetting_two_step_clears_it_ends_sessions_and_names_the_admin(create_user, now):
    admin = create_user(Role.ADMIN)
    therapist = create_user(Role.THERAPIST)
    assert therapist.mfa_enabled
    sessions.start_session(therapist, now=now)
    mfa.reset(therapist, actor=admin, now=now)
    assert not therapist.mfa_enabled
    assert (
        db.session.scalar(select(UserSession.end_reason).where(UserSession.user_id == therapist.id))
        == "mfa_reset"
    )
    (event,) = _actions("mfa.reset")
    assert (event.actor_id, event.object_id) == (admin.id, therapist.id)


def test_an_unknown_account_is_not_found(create_user, now):
    admin = create_user(Role.ADMIN)
    with pytest.raises(NotFound):
        account_admin.account(admin, 987654, now=now)
