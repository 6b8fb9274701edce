"""Demo data: a program with therapists, patients, families and their consents."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import func, select

from familylink.extensions import db
from familylink.models import Role, User
from familylink.services.passwords import hash_password
from familylink.services.program import forget_cached_program, program_row

DOMAIN = "example.org"


def has_accounts() -> bool:
    return bool(db.session.scalar(select(func.count(User.id))))


def _person(role, name, email, password_hash, now, **extra) -> User:
    user = User(
        role=role,
        name=name,
        email=email,
        password_hash=password_hash,
        verified_at=now,
        timezone=extra.pop("timezone", "America/New_York"),
        **extra,
    )
    db.session.add(user)
    return user


def seed(*, password: str, now: datetime, progress: Callable[[str], None] = print) -> list:
    """Create the demo and return (role, name, email) for each account."""
    program = program_row()
    program.name = "Riverside Family Program"
    program.sender_name = "Riverside Family Sessions"
    program.timezone = "America/New_York"
    db.session.flush()
    forget_cached_program()
    hashed = hash_password(password)

    progress("Creating staff…")
    admin = _person(Role.ADMIN, "Alex Admin", f"admin@{DOMAIN}", hashed, now)
    lee = _person(Role.THERAPIST, "Dr. Grace Lee", f"lee@{DOMAIN}", hashed, now)
    patel = _person(Role.THERAPIST, "Dr. Ravi Patel", f"patel@{DOMAIN}", hashed, now)
    db.session.flush()

    progress("Creating patients…")
    start = now - timedelta(days=21)
    jordan = _person(
        Role.PATIENT,
        "Jordan Rivera",
        f"jordan@{DOMAIN}",
        hashed,
        now,
        therapist_id=lee.id,
        episode_start=start,
    )
    sam = _person(
        Role.PATIENT,
        "Sam Okafor",
        f"sam@{DOMAIN}",
        hashed,
        now,
        therapist_id=lee.id,
        episode_start=start,
    )
    casey = _person(
        Role.PATIENT,
        "Casey Nguyen",
        f"casey@{DOMAIN}",
        hashed,
        now,
        therapist_id=patel.id,
        episode_start=start,
    )
    riley = _person(
        Role.PATIENT,
        "Riley Brooks",
        f"riley@{DOMAIN}",
        hashed,
        now,
        therapist_id=patel.id,
        episode_start=start,
    )

    progress("Creating family members…")
    family = [
        _person(Role.FAMILY, "Maria Rivera", f"maria@{DOMAIN}", hashed, now),
        _person(
            Role.FAMILY,
            "Luis Rivera",
            f"luis@{DOMAIN}",
            hashed,
            now,
            timezone="America/Los_Angeles",
        ),
        _person(Role.FAMILY, "Ada Okafor", f"ada@{DOMAIN}", hashed, now),
        _person(Role.FAMILY, "Kim Nguyen", f"kim@{DOMAIN}", hashed, now),
        _person(Role.FAMILY, "Pat Brooks", f"pat@{DOMAIN}", hashed, now),
        _person(Role.FAMILY, "Drew Hale", f"drew@{DOMAIN}", hashed, now),
    ]
    db.session.flush()
    people = [admin, lee, patel, jordan, sam, casey, riley, *family]
    seed_learning(now=now, progress=progress)
    return [(p.role, p.name, p.email) for p in people]


def seed_learning(*, now: datetime, progress: Callable[[str], None] = print) -> None:
    """Load the learning modules; start Maria's weekly sequence about Jordan if she may see him.

    Without an active consent from Jordan to Maria (none exist yet on a bare install), only
    the modules are loaded.
    """
    from familylink.services import consent, learning

    progress("Loading learning modules…")
    learning.load_modules(now=now)
    people = {
        u.email: u
        for u in db.session.scalars(
            select(User).where(User.email.in_([f"{n}@{DOMAIN}" for n in ("maria", "jordan")]))
        )
    }
    maria, jordan = people.get(f"maria@{DOMAIN}"), people.get(f"jordan@{DOMAIN}")
    if maria is None or jordan is None or jordan.therapist_id is None:
        return
    if not consent.may_disclose(maria.id, jordan.id, None, now=now, audit_access=False):
        return
    therapist = db.session.get(User, jordan.therapist_id)
    learning.apply_sequence(
        therapist=therapist, patient_id=jordan.id, family_user_id=maria.id, now=now
    )
