"""Private calendar feeds: a secret URL per person that a calendar app polls.

Only the token's SHA-256 is stored. A family member's feed holds only sessions they attend,
for patients whose consent still gives them the scheduling scope (asked of the access gate
at every read), and each read is recorded as a disclosure.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import select

from familylink.extensions import db
from familylink.models import AppointmentStatus, CalendarFeed, Role, User
from familylink.services import audit, tokens
from familylink.services.booking import listings
from familylink.services.calendar.ics import feed_ics


def feed_of(user: User) -> CalendarFeed | None:
    return db.session.scalar(select(CalendarFeed).where(CalendarFeed.user_id == user.id))


def turn_on_feed(user: User, *, now: datetime) -> str:
    """Start (or reset) the person's private feed; return the new secret token (shown once)."""
    token = secrets.token_urlsafe(32)
    feed = feed_of(user)
    if feed is None:
        feed = CalendarFeed(user_id=user.id, token_hash=tokens.digest(token), created_at=now)
        db.session.add(feed)
    else:
        feed.token_hash, feed.active, feed.created_at = tokens.digest(token), True, now
    db.session.flush()
    audit.record("calendar_feed.reset", actor=user, obj=feed, now=now)
    return token


def turn_off_feed(user: User, *, now: datetime, reason: str | None = None) -> None:
    """Turn the feed off: by the person, or (`reason`) as their sessions end."""
    feed = feed_of(user)
    if feed is not None and feed.active:
        feed.active = False
        detail = {"reason": reason} if reason else None
        audit.record("calendar_feed.off", actor=user, obj=feed, detail=detail, now=now)
        db.session.flush()


def feed_for_token(token: str, *, now: datetime) -> bytes | None:
    """The feed's calendar, or None for an unknown, reset or turned-off token.

    A family member's feed holds only sessions they attend, for patients whose consent still
    gives them the scheduling scope (the gate decides, and records each patient shown as a
    disclosure).
    """
    if not token or len(token) > 100:
        return None
    feed = db.session.scalar(
        select(CalendarFeed).where(CalendarFeed.token_hash == tokens.digest(token))
    )
    if feed is None or not feed.active:
        return None
    user = db.session.get(User, feed.user_id)
    if user is None or not user.active:
        return None
    if user.role == Role.FAMILY:
        appointments = [
            s.appointment
            for s in listings.upcoming_for_family(user, now=now, what="calendar feed", booked=True)
        ]
    elif user.role == Role.PATIENT:
        appointments = [
            s.appointment
            for s in listings.patient_appointments(user, now=now, page="calendar feed")
            if s.on_calendar
        ]
    elif user.role == Role.THERAPIST:
        appointments = [
            a
            for a in listings.therapist_appointments(
                user, now, now + timedelta(days=120), now=now, page="calendar feed"
            )
            if a.status == AppointmentStatus.SCHEDULED
        ]
    else:
        appointments = []
    return feed_ics(appointments, user, now=now)
