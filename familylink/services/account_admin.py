"""The accounts the admin looks after: the list (search, role, pages) and the operations on
one account, which the admin's accounts page and the `flask account` commands both call.

Disabling ends every sign-in session of the account at once; nobody may disable their own
account or the last active admin. Resetting two-step sign-in is `mfa.reset`, which the page
and `flask account reset-mfa` call directly. Each operation writes its audit row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import func, or_, select

from familylink.extensions import db
from familylink.models import Role, User, UserSession
from familylink.services import audit, sessions
from familylink.services.errors import Conflict, NotFound, ValidationError

PAGE_SIZE = 50
MAX_SEARCH = 100


@dataclass(frozen=True)
class AccountRow:
    user: User
    last_sign_in: datetime | None


@dataclass(frozen=True)
class AccountPage:
    rows: list[AccountRow]
    total: int
    page: int
    pages: int


def list_accounts(
    actor: User, *, search: str = "", role: str | None = None, page: int = 1, now: datetime
) -> AccountPage:
    """One page of accounts, by name: `search` is found anywhere in the name or the email
    address (any case), `role` keeps one role. Two queries whatever the page holds.

    Patients' accounts are patient-linked data: each patient shown gets a
    "patient_data.viewed" row (page "accounts"), and the listing itself an
    "accounts.listed" row (which page, which role, how many shown; never the search text).
    """
    text = (search or "").strip().lower()[:MAX_SEARCH]
    conditions = []
    if text:
        # A "%" or "_" typed is a plain character (autoescape), as on the library's search.
        conditions.append(
            or_(
                func.lower(User.name).contains(text, autoescape=True),
                func.lower(User.email).contains(text, autoescape=True),
            )
        )
    if role:
        conditions.append(User.role == role)
    total = db.session.scalar(select(func.count(User.id)).where(*conditions)) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    last = (
        select(UserSession.user_id, func.max(UserSession.created_at).label("at"))
        .group_by(UserSession.user_id)
        .subquery()
    )
    found = db.session.execute(
        select(User, last.c.at)
        .outerjoin(last, last.c.user_id == User.id)
        .where(*conditions)
        .order_by(func.lower(User.name), User.id)
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    ).all()
    rows = [AccountRow(user, at) for user, at in found]
    # One INSERT whatever the page shows: the views of the patients listed, and the listing.
    patients = [row.user.id for row in rows if row.user.role == Role.PATIENT]
    audit.record_many(
        [
            *audit.patient_view_values(actor, patients, page="accounts", now=now),
            audit.values(
                "accounts.listed",
                actor=actor,
                detail={
                    "page": page,
                    "role": role or "",
                    "searched": bool(text),
                    "shown": len(rows),
                },
                now=now,
            ),
        ]
    )
    return AccountPage(rows, total, page, pages)


def account(actor: User, user_id: int, *, now: datetime) -> User:
    """One account for the admin to act on (NotFound when there is none); opening a
    patient's account is a view of patient-linked data, audited as such."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound()
    if user.role == Role.PATIENT:
        audit.record_patient_views(actor, [user.id], page="account", now=now)
    return user


def set_account_active(user: User, active: bool, *, actor: User | None, now: datetime) -> bool:
    """Disable or re-enable an account; disabling ends its sessions at once. Returns False,
    changing and auditing nothing, when the account already was so.

    `actor` is None when done from the command line. Refused: disabling oneself, or the
    last active admin (nobody could sign in to manage the program any more).
    """
    if not active:
        if actor is not None and actor.id == user.id:
            raise ValidationError(_("You can't disable your own account."))
        if user.role == Role.ADMIN and user.active and _other_active_admins(user) == 0:
            raise Conflict(
                _("This is the last active admin account: enable or invite another admin first.")
            )
    if user.active == active:
        return False
    user.active = active
    if not active:
        sessions.end_what_others_may_hold(user, "disabled", now=now)
    audit.record(
        "account.enabled" if active else "account.disabled", actor=actor, obj=user, now=now
    )
    return True


def _other_active_admins(user: User) -> int:
    return (
        db.session.scalar(
            select(func.count(User.id)).where(
                User.role == Role.ADMIN, User.active.is_(True), User.id != user.id
            )
        )
        or 0
    )
