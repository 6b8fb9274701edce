"""Server-side sign-in sessions: start, look up, time out and end them.

The browser's cookie carries only a random session id; this table decides whether it is
still good. Ending a session here ends it everywhere, even for a copied cookie.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import bindparam, select, update

from familylink.extensions import db
from familylink.models import User, UserSession
from familylink.services import audit, tokens
from familylink.services.calendar import feeds
from familylink.services.errors import NotFound

ACTIVITY_GRANULARITY = timedelta(minutes=1)
# Every signed-in request runs these: built once (building a statement and its cache key
# cost more than running this one). The user is the one object a page goes on to use; of
# its session only what the limits need is read, as plain values, not a second object.
_LIVE_BY_DIGEST = (
    select(User, UserSession.id, UserSession.created_at, UserSession.last_seen_at)
    .join(UserSession, UserSession.user_id == User.id)
    .where(UserSession.id_hash == bindparam("digest"), UserSession.ended_at.is_(None))
)
_sessions = UserSession.__table__
_TOUCH = (
    update(_sessions)
    .where(_sessions.c.id == bindparam("session_id"))
    .values(last_seen_at=bindparam("now", type_=_sessions.c.last_seen_at.type))
)


@dataclass(frozen=True, slots=True)
class LiveSession:
    """A session found live by `resolve`: its id, its user, and whether the look-up wrote
    its activity stamp (a write the caller commits)."""

    id: int
    user: User
    touched: bool


def _limits() -> tuple[timedelta, timedelta]:
    config = current_app.config
    return (
        timedelta(minutes=config["SESSION_IDLE_MINUTES"]),
        timedelta(minutes=config["SESSION_ABSOLUTE_MINUTES"]),
    )


def start_session(
    user: User, *, now: datetime, ip: str | None = None, user_agent: str | None = None
) -> tuple[UserSession, str]:
    """Store a new session for `user`; return it and the raw id only the cookie carries."""
    raw = secrets.token_urlsafe(32)
    record = UserSession(
        id_hash=tokens.digest(raw),
        user_id=user.id,
        created_at=now,
        last_seen_at=now,
        ip=ip,
        user_agent=(user_agent or "")[:255] or None,
    )
    db.session.add(record)
    db.session.flush()
    return record, raw


def end_session(
    record: UserSession, reason: str, *, now: datetime, actor: User | None = None
) -> None:
    """Mark the session ended (once); audited with its reason."""
    if record.ended_at is not None:
        return
    record.ended_at = now
    record.end_reason = reason
    audit.record(
        "auth.session_ended",
        actor=actor or record.user,
        obj=record,
        detail={"reason": reason},
        now=now,
    )


def resolve(raw: str | None, *, now: datetime, touch: bool = True) -> LiveSession | None:
    """The live session for a cookie's id, or None.

    A session past its idle or absolute limit, or whose account is disabled, is ended here
    (and audited) and None is returned. `touch` moves the idle clock on; background
    requests pass False.
    """
    if not raw or not isinstance(raw, str) or len(raw) > 100:
        return None
    row = db.session.execute(_LIVE_BY_DIGEST, {"digest": tokens.digest(raw)}).one_or_none()
    if row is None:
        return None
    user, session_id, created_at, last_seen_at = row
    idle, absolute = _limits()
    reason = None
    if not user.active:
        reason = "disabled"
    elif now - created_at >= absolute:
        reason = "expired"
    elif now - last_seen_at >= idle:
        reason = "idle"
    if reason is not None:
        end_session(db.session.get(UserSession, session_id), reason, now=now)
        return None
    # Activity is noted at most once a minute: every page would otherwise write a row.
    touched = touch and now - last_seen_at >= ACTIVITY_GRANULARITY
    if touched:
        db.session.execute(_TOUCH, {"session_id": session_id, "now": now})
    return LiveSession(session_id, user, touched)


def active_sessions(user: User, *, now: datetime) -> list[UserSession]:
    """The user's sessions that have not ended nor passed a time limit, newest first."""
    idle, absolute = _limits()
    rows = db.session.scalars(
        select(UserSession)
        .where(UserSession.user_id == user.id, UserSession.ended_at.is_(None))
        .order_by(UserSession.last_seen_at.desc(), UserSession.id.desc())
    ).all()
    return [r for r in rows if now - r.last_seen_at < idle and now - r.created_at < absolute]


def end_own_session(user: User, session_id: int, *, now: datetime) -> UserSession:
    """End one of the user's own sessions; NotFound for anyone else's or an ended one."""
    record = db.session.get(UserSession, session_id)
    if record is None or record.user_id != user.id or record.ended_at is not None:
        raise NotFound()
    end_session(record, "ended_by_user", now=now, actor=user)
    return record


def end_all_sessions(
    user_id: int, reason: str, *, now: datetime, keep: UserSession | None = None
) -> int:
    """End every open session of a user (except `keep`); return how many were ended."""
    rows = db.session.scalars(
        select(UserSession).where(UserSession.user_id == user_id, UserSession.ended_at.is_(None))
    ).all()
    ended = 0
    for record in rows:
        if keep is not None and record.id == keep.id:
            continue
        end_session(record, reason, now=now)
        ended += 1
    db.session.flush()
    return ended


def end_what_others_may_hold(
    user: User, reason: str, *, now: datetime, keep: UserSession | None = None
) -> None:
    """Whoever had the password before is signed out (but for the session `keep`), holds no
    account link and no calendar feed link (the feed is turned off: a new one is a new
    link). For a new password, and the admin disabling the account."""
    tokens.revoke_account_links(user.id, now=now)
    end_all_sessions(user.id, reason, now=now, keep=keep)
    feeds.turn_off_feed(user, now=now, reason=reason)
