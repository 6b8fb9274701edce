"""The session look-up every signed-in request makes (issue 19): one statement, the user the
only object it loads, the activity stamp written at most once a minute, and every limit
(ended, disabled, idle, absolute) still ending the session with its audit row."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import AuditEvent, Role, User, UserSession
from familylink.services import sessions
from tests.factories import create_user


@pytest.fixture
def started(app_ctx, now):
    user = create_user(Role.FAMILY)
    record, raw = sessions.start_session(user, now=now)
    db.session.commit()
    db.session.expunge_all()  # a new request starts with an empty session
    return record.id, user.id, raw


def test_a_live_session_is_one_statement_loading_only_its_user(started, count_queries, now):
    session_id, user_id, raw = started
    with count_queries() as counter:
        live = sessions.resolve(raw, now=now + timedelta(seconds=30))
    assert counter.count == 1
    assert (live.id, live.user.id, live.touched) == (session_id, user_id, False)
    assert isinstance(live.user, User) and live.user in db.session
    assert [type(o) for o in db.session.identity_map.values()] == [User]


def test_activity_is_stamped_once_a_minute_by_one_update(started, count_queries, now):
    session_id, _user_id, raw = started
    later = now + timedelta(minutes=2)
    with count_queries() as counter:
        live = sessions.resolve(raw, now=later)
    assert live.touched
    assert [s.split()[0] for s in counter.statements if s.strip() != "SELECT 1"] == [
        "SELECT",
        "UPDATE",
    ]
    db.session.commit()
    assert db.session.get(UserSession, session_id).last_seen_at == later
    db.session.expunge_all()
    assert sessions.resolve(raw, now=later + timedelta(seconds=59)).touched is False
    assert sessions.resolve(raw, now=later + timedelta(minutes=1), touch=False).touched is False


@pytest.mark.parametrize(
    ("wait", "reason"),
    [(timedelta(minutes=31), "idle"), (timedelta(hours=12, minutes=1), "expired")],
)
def test_a_session_past_a_limit_is_ended_and_audited(started, now, wait, reason, app):
    session_id, _user_id, raw = started
    if reason == "expired":  # active all along, so only the absolute limit is passed
        db.session.get(UserSession, session_id).last_seen_at = now + wait - timedelta(minutes=1)
        db.session.commit()
        db.session.expunge_all()
    assert sessions.resolve(raw, now=now + wait) is None
    record = db.session.get(UserSession, session_id)
    assert (record.ended_at, record.end_reason) == (now + wait, reason)
    audit = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "auth.session_ended"))
    assert audit.object_id == session_id and audit.detail == {"reason": reason}


def test_a_disabled_account_or_an_ended_session_resolves_to_nobody(started, now):
    session_id, user_id, raw = started
    db.session.get(User, user_id).active = False
    db.session.flush()
    assert sessions.resolve(raw, now=now) is None
    assert db.session.get(UserSession, session_id).end_reason == "disabled"
    assert sessions.resolve(raw, now=now) is None  # ended: nothing more is written
    assert sessions.resolve("not-a-session", now=now) is None
