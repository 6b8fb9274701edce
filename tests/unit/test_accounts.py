from datetime import timedelta

import pytest
from sqlalchemy import func, select

from familylink.extensions import db
from familylink.models import AccountToken, AuditEvent, OutboxEmail, Role, TokenPurpose, User
from familylink.services import accounts, sessions, tokens
from familylink.services.errors import InvalidToken, ValidationError
from tests.factories import PASSWORD


def _register(now, email="maria@example.org"):
    return accounts.register_family_member(
        name="Maria Rivera",
        email=email,
        password="lantern orchard pebble",
        timezone="America/Chicago",
        now=now,
    )


def _link_token(email_row: OutboxEmail) -> str:
    return email_row.text_body.split("/verify/")[1].split()[0]


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_registration_creates_an_unverified_family_account_and_queues_verification(app_ctx, now):
    user = _register(now, email="Maria@Example.org")
    assert user.role == Role.FAMILY
    assert user.email == "maria@example.org"
    assert user.verified_at is None
    email = db.session.scalar(select(OutboxEmail).where(OutboxEmail.kind == "verify_email"))
    assert email.to_address == "maria@example.org"
    assert "/verify/" in email.text_body


def test_registering_a_known_address_creates_nothing_and_tells_the_owner(app_ctx, create_user, now):
    create_user(Role.PATIENT, email="jordan@example.org")
    users_before = _count(User)
    assert _register(now, email="JORDAN@example.org") is None
    assert _count(User) == users_before
    kinds = db.session.scalars(select(OutboxEmail.kind)).all()
    assert kinds == ["already_registered"]


def test_registering_a_disabled_accounts_address_sends_no_link(app_ctx, create_user, now):
    """A disabled account can't take a new password: its owner is told what the reset page
    tells them (no account they can use), never sent a link that cannot work."""
    jordan = create_user(Role.FAMILY, email="jordan@example.org")
    jordan.active = False
    assert _register(now, email="jordan@example.org") is None
    kinds = db.session.scalars(select(OutboxEmail.kind)).all()
    assert kinds == ["reset_no_account"]
    usable = select(AccountToken).where(AccountToken.expires_at > now)
    assert db.session.scalars(usable).all() == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 121}, "name"),
        ({"email": "not-an-address"}, "email"),
        ({"email": ""}, "email"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"password": "too short"}, "password"),
    ],
)
def test_bad_registration_input_names_the_field_and_stores_nothing(app_ctx, now, changes, field):
    values = {
        "name": "Maria Rivera",
        "email": "maria@example.org",
        "password": "lantern orchard pebble",
        "timezone": "America/Chicago",
    }
    values.update(changes)
    with pytest.raises(ValidationError) as caught:
        accounts.register_family_member(now=now, **values)
    assert caught.value.field == field
    assert _count(User) == 0
    assert _count(OutboxEmail) == 0


def test_verification_link_works_once(app_ctx, now):
    _register(now)
    raw = _link_token(db.session.scalar(select(OutboxEmail)))
    user = accounts.verify_email(raw, now=now + timedelta(minutes=5))
    assert user.verified_at == now + timedelta(minutes=5)
    with pytest.raises(InvalidToken):
        accounts.verify_email(raw, now=now + timedelta(minutes=6))


def test_verification_link_expires_after_48_hours(app_ctx, now):
    _register(now)
    raw = _link_token(db.session.scalar(select(OutboxEmail)))
    with pytest.raises(InvalidToken):
        accounts.verify_email(raw, now=now + timedelta(hours=48))


def test_a_token_for_one_purpose_does_not_work_for_another(app_ctx, create_user, now):
    user = create_user()
    raw = tokens.issue_token(TokenPurpose.VERIFY, email=user.email, user=user, now=now)
    with pytest.raises(InvalidToken):
        accounts.reset_password(raw, "lantern orchard pebble", now=now)


def test_only_a_hash_of_each_token_is_stored(app_ctx, create_user, now):
    user = create_user()
    raw = tokens.issue_token(TokenPurpose.RESET, email=user.email, user=user, now=now)
    stored = db.session.scalar(select(AccountToken))
    assert raw not in stored.token_hash


def test_sign_in_succeeds_with_the_right_password(app_ctx, create_user, now):
    user = create_user(email="lee@example.org")
    assert accounts.authenticate("LEE@example.org", PASSWORD, now=now) == user


@pytest.mark.parametrize("case", ["unknown", "wrong password", "unverified", "disabled"])
def test_every_failed_sign_in_gets_the_same_message(app_ctx, create_user, now, case):
    create_user(email="known@example.org", verified=case != "unverified", active=case != "disabled")
    email = "nobody@example.org" if case == "unknown" else "known@example.org"
    password = "wrong password here" if case == "wrong password" else PASSWORD
    with pytest.raises(ValidationError) as caught:
        accounts.authenticate(email, password, now=now)
    assert caught.value.message == accounts.SIGN_IN_FAILED
    failure = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "auth.sign_in_failed")
    )
    assert failure.outcome == "failure"


def test_reset_for_an_unknown_address_sends_a_note_with_no_link(app_ctx, now):
    accounts.request_password_reset("nobody@example.org", now=now)
    accounts.request_password_reset("nobody@example.org", now=now)
    notes = db.session.scalars(select(OutboxEmail)).all()
    # One each time, as for a known address, so repeating a request shows nothing either.
    assert [(n.kind, n.to_address, n.to_user_id) for n in notes] == [
        ("reset_no_account", "nobody@example.org", None)
    ] * 2
    assert "http" not in notes[0].text_body
    # The tokens issued alongside (for equal work) belong to no account and are never sent.
    assert db.session.scalars(select(AccountToken.user_id)).all() == [None, None]


def test_signing_up_with_a_known_address_mails_the_owner_a_reset_link(app_ctx, create_user, now):
    user = create_user(email="ada@example.org")
    assert _register(now, email="ada@example.org") is None
    note = db.session.scalar(select(OutboxEmail))
    token = db.session.scalar(select(AccountToken))
    assert (note.kind, note.to_user_id) == ("already_registered", user.id)
    assert (token.purpose, token.user_id) == ("reset", user.id)
    assert "/reset/" in note.text_body


def test_reset_link_sets_a_new_password_once(app_ctx, create_user, now):
    user = create_user(email="ada@example.org")
    accounts.request_password_reset("ada@example.org", now=now)
    raw = db.session.scalar(select(OutboxEmail)).text_body.split("/reset/")[1].split()[0]
    accounts.reset_password(raw, "new lantern orchard", now=now + timedelta(minutes=10))
    assert accounts.authenticate(user.email, "new lantern orchard", now=now) == user
    with pytest.raises(InvalidToken):
        accounts.reset_password(raw, "another lantern orchard", now=now + timedelta(minutes=11))


def test_reset_link_expires_after_an_hour(app_ctx, create_user, now):
    create_user(email="ada@example.org")
    accounts.request_password_reset("ada@example.org", now=now)
    raw = db.session.scalar(select(OutboxEmail)).text_body.split("/reset/")[1].split()[0]
    with pytest.raises(InvalidToken):
        accounts.reset_password(raw, "new lantern orchard", now=now + timedelta(hours=1))


def test_a_weak_new_password_leaves_the_reset_link_usable(app_ctx, create_user, now):
    create_user(email="ada@example.org")
    accounts.request_password_reset("ada@example.org", now=now)
    raw = db.session.scalar(select(OutboxEmail)).text_body.split("/reset/")[1].split()[0]
    with pytest.raises(ValidationError):
        accounts.reset_password(raw, "short", now=now)
    accounts.reset_password(raw, "new lantern orchard", now=now)


def test_an_invited_patient_sets_a_password_and_is_verified(app_ctx, create_user, now):
    therapist = create_user(Role.THERAPIST)
    patient = accounts.invite_user(
        role=Role.PATIENT,
        name="Jordan Rivera",
        email="jordan@example.org",
        invited_by=therapist,
        therapist=therapist,
        now=now,
    )
    assert patient.password_hash is None and patient.therapist_id == therapist.id
    email = db.session.scalar(select(OutboxEmail))
    raw = email.text_body.split("/invitation/")[1].split()[0]
    accounts.accept_invitation(raw, "lantern orchard pebble", now=now)
    assert accounts.authenticate("jordan@example.org", "lantern orchard pebble", now=now) == patient


def test_inviting_an_existing_address_is_refused(app_ctx, create_user, now):
    admin = create_user(Role.ADMIN)
    create_user(email="lee@example.org")
    with pytest.raises(ValidationError) as caught:
        accounts.invite_user(
            role=Role.THERAPIST, name="Dr Lee", email="lee@example.org", invited_by=admin, now=now
        )
    assert caught.value.field == "email"


def test_an_invitation_names_its_sender_without_a_word_screened_since(app_ctx, create_user, now):
    """A therapist saved as "Grace Lee, LMHC" before credentials were screened."""
    therapist = create_user(Role.THERAPIST, name="Grace Lee, LMHC")
    accounts.invite_user(
        role=Role.PATIENT, name="Jordan Rivera", email="jordan@example.org",
        invited_by=therapist, therapist=therapist, now=now,
    )  # fmt: skip
    invitation = db.session.scalar(
        select(OutboxEmail).where(OutboxEmail.kind == "patient_invitation")
    )
    for body in (invitation.text_body, invitation.html_body):
        assert "Grace Lee has set up an account for you" in body and "LMHC" not in body


def test_invitations_are_audited(app_ctx, create_user, now):
    admin = create_user(Role.ADMIN)
    accounts.invite_user(
        role=Role.THERAPIST, name="Dr Lee", email="lee@example.org", invited_by=admin, now=now
    )
    db.session.commit()  # rows recorded outside an action are written at the commit
    actions = set(db.session.scalars(select(AuditEvent.action)))
    assert {"account.invited", "email.queued"} <= actions


def _token(purpose, *, now, hours, used=False):
    tokens.issue_token(purpose, email=f"{purpose}{hours}@example.org", now=now)
    token = db.session.scalars(select(AccountToken).order_by(AccountToken.id.desc())).first()
    token.expires_at = now + timedelta(hours=hours)
    token.used_at = now if used else None
    return token


def test_expired_tokens_are_purged_and_counted_in_one_audit_row(app_ctx, now):
    """A token past its end opens nothing (the same answer as no token at all), so it is
    removed: resets, invitations and verifications alike, used or not; live ones stay."""
    kept = [
        _token(TokenPurpose.VERIFY, now=now, hours=1).id,
        _token(TokenPurpose.RESET, now=now, hours=1, used=True).id,
    ]
    _token(TokenPurpose.RESET, now=now, hours=-1)
    _token(TokenPurpose.FAMILY_INVITE, now=now, hours=-24 * 8, used=True)
    _token(TokenPurpose.VERIFY, now=now, hours=0)
    assert tokens.purge_expired(now) == 3
    assert sorted(db.session.scalars(select(AccountToken.id))) == kept
    assert tokens.purge_expired(now) == 0
    purged = db.session.scalars(
        select(AuditEvent.detail).where(AuditEvent.action == "account.tokens_purged")
    ).all()
    assert purged == [{"tokens": 3}]  # how many, never whose


def test_the_mail_worker_purges_expired_tokens_and_so_does_a_command(app, now):
    from familylink.services import tokens as token_service

    assert token_service.purge_expired in app.extensions["familylink_sweeps"]
    with app.app_context():
        _token(TokenPurpose.RESET, now=now, hours=-1)
        db.session.commit()
    runner = app.test_cli_runner()
    assert "--now" in runner.invoke(args=["account", "purge-tokens", "--help"]).output
    result = runner.invoke(args=["account", "purge-tokens", "--now", now.isoformat()])
    assert result.exit_code == 0, result.output
    assert "1 expired token removed" in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count(AccountToken.id))) == 0


def test_the_token_written_for_an_unknown_address_is_gone_at_the_next_purge(app_ctx, now):
    """The same work as for a known address (the timing tells nothing), but its row is born
    expired: the worker's next pass removes it, so no unknown address is kept in it."""
    accounts.request_password_reset("nobody@example.org", now=now)
    assert tokens.purge_expired(now) == 1
    assert db.session.scalar(select(func.count(AccountToken.id))) == 0


NEW_PASSWORD = "quiet harbour lantern"


def _set_password(how: str, user: User, now) -> None:
    """The account's password set anew: from a reset link, or on the account page."""
    if how == "reset":
        raw = tokens.issue_token(TokenPurpose.RESET, email=user.email, user=user, now=now)
        accounts.reset_password(raw, NEW_PASSWORD, now=now)
    else:
        accounts.change_password(
            user, current_password=PASSWORD, new_password=NEW_PASSWORD, now=now
        )


@pytest.mark.parametrize("how", ["reset", "changed"])
def test_a_new_password_ends_an_email_change_asked_for_before_it(app_ctx, create_user, now, how):
    """Someone who had the password asks to move the account to their own address; the
    owner notices and sets a new password: that link must not take the account."""
    user = create_user(email="maria@example.org")
    raw = tokens.issue_token(
        TokenPurpose.EMAIL_CHANGE, email="taker@example.org", user=user, now=now,
        payload={"old": user.email},
    )  # fmt: skip
    _set_password(how, user, now)
    with pytest.raises(InvalidToken):
        accounts.confirm_email_change(raw, now=now)
    assert user.email == "maria@example.org"


def test_a_reset_ends_an_invitation_link_and_an_invitation_ends_sessions(app_ctx, create_user, now):
    admin = create_user(Role.ADMIN)
    lee = accounts.invite_user(
        role=Role.THERAPIST, name="Dr Lee", email="lee@example.org", invited_by=admin, now=now
    )
    invitation = tokens.issue_token(TokenPurpose.INVITE, email=lee.email, user=lee, now=now)
    _set_password("reset", lee, now)
    with pytest.raises(InvalidToken):
        accounts.accept_invitation(invitation, "another long passphrase", now=now)

    again = tokens.issue_token(TokenPurpose.INVITE, email=lee.email, user=lee, now=now)
    signed_in, _raw = sessions.start_session(lee, now=now)
    accounts.accept_invitation(again, "another long passphrase", now=now)
    db.session.refresh(signed_in)
    assert signed_in.ended_at is not None and signed_in.end_reason == "invitation_accepted"


def _email_change_link(user: User, address: str, now) -> str:
    return tokens.issue_token(
        TokenPurpose.EMAIL_CHANGE, email=address, user=user, now=now, payload={"old": user.email}
    )


@pytest.mark.parametrize("second", ["maria2@example.org", "taken@example.org"])
def test_a_newer_email_change_request_ends_the_earlier_link(app_ctx, create_user, now, second):
    """Maria mistypes her new address, then asks again: whoever owns the mistyped address
    must not be able to take the account with the first link (the second request may go to
    an address with an account, where nothing is sent, and still ends it)."""
    user = create_user(email="maria@example.org")
    create_user(email="taken@example.org")
    mistyped = _email_change_link(user, "typo@example.org", now)
    accounts.request_email_change(user, password=PASSWORD, new_email=second, now=now)
    with pytest.raises(InvalidToken):
        accounts.confirm_email_change(mistyped, now=now + timedelta(minutes=5))
    assert user.email == "maria@example.org"


def test_an_email_change_ends_the_accounts_other_links(app_ctx, create_user, now):
    """A reset link sent to the old address must not come back to life when the address is
    changed back to it."""
    user = create_user(email="maria@example.org")
    reset = tokens.issue_token(TokenPurpose.RESET, email=user.email, user=user, now=now)
    accounts.confirm_email_change(_email_change_link(user, "new@example.org", now), now=now)
    accounts.confirm_email_change(_email_change_link(user, "maria@example.org", now), now=now)
    assert user.email == "maria@example.org"
    with pytest.raises(InvalidToken):
        accounts.reset_password(reset, NEW_PASSWORD, now=now)


def test_an_address_change_speaks_the_account_holders_language(app, app_ctx, create_user, now):
    """The emails of an address change go to addresses, not to the account, yet they are the
    account holder's: in their language, whatever browser opened the link."""
    user = create_user(email="maria@example.org")
    user.locale = "es"
    with app.test_request_context(headers={"Accept-Language": "en-US"}):
        accounts.request_email_change(
            user, password=PASSWORD, new_email="nueva@example.org", now=now
        )
        accounts.confirm_email_change(_email_change_link(user, "otra@example.org", now), now=now)
    emails = db.session.scalars(select(OutboxEmail).order_by(OutboxEmail.id)).all()
    assert [e.kind for e in emails] == ["email_change_verify", "email_changed_notice"]
    for email in emails:
        assert 'lang="es"' in email.html_body, (email.kind, email.subject)
