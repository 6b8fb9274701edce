"""Factories for test data: plain functions with sensible defaults, flushed not committed."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from familylink.extensions import db
from familylink.models import Role, User
from familylink.services.passwords import hash_password
from tests.moments import NOON

PASSWORD = "quiet river morning tea"
_sequence = itertools.count(1)


def create_user(
    role: Role = Role.FAMILY,
    *,
    name: str | None = None,
    email: str | None = None,
    password: str | None = PASSWORD,
    verified: bool = True,
    timezone: str = "America/New_York",
    therapist: User | None = None,
    now: datetime = NOON,
    **extra,
) -> User:
    n = next(_sequence)
    user = User(
        role=role,
        name=name or f"{role.value.title()} Person{n}",
        email=(email or f"{role.value}{n}@example.org").lower(),
        password_hash=hash_password(password) if password else None,
        verified_at=now - timedelta(days=30) if verified else None,
        timezone=timezone,
        therapist_id=therapist.id if therapist else None,
        episode_start=(now - timedelta(days=14)) if role == Role.PATIENT else None,
        created_at=now - timedelta(days=30),
        **extra,
    )
    db.session.add(user)
    db.session.flush()
    return user
