"""Two-step sign-in: TOTP authenticators (RFC 6238) and one-time recovery codes.

Therapists and admins must enrol before they reach any staff page; family members and
patients may opt in. A code is accepted once: a replayed code is refused.
"""

from __future__ import annotations

import io
import secrets
from datetime import datetime

import pyotp
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.orm.attributes import set_committed_value

from familylink.extensions import db
from familylink.models import RecoveryCode, User
from familylink.services import accounts, audit, tokens
from familylink.services.errors import ValidationError

RECOVERY_CODE_COUNT = 10
RECOVERY_CODE_BYTES = 10
# The hex digits of a recovery code: those made now, and the 40-bit ones made before, which
# still work until used or replaced.
RECOVERY_CODE_LENGTHS = (2 * RECOVERY_CODE_BYTES, 10)
WRONG_CODE = _l("That code didn't work. Check the time on your phone and try the newest code.")
# The account page asks this on every visit: built once (building a statement and its
# cache key cost more than running this one), and counted by the database.
_UNUSED_CODES = select(func.count(RecoveryCode.id)).where(
    RecoveryCode.user_id == bindparam("user"), RecoveryCode.used_at.is_(None)
)


def _normalize(code: str | None) -> str:
    return "".join((code or "").split()).replace("-", "").lower()[:32]


def password_step_mark(user: User) -> str:
    """What the pending second step keeps of the password it followed (a keyed hash of its
    hash, in the signed cookie): a new password since then ends that step."""
    return tokens.keyed_digest(user.password_hash or "")


def begin_enrolment(user: User) -> str:
    """Give the user a new, not yet confirmed secret (kept until confirmed or replaced)."""
    if user.mfa_enabled:
        raise ValidationError(_("Two-step sign-in is already on."), field="code")
    if not user.totp_secret:
        user.totp_secret = pyotp.random_base32()
    return user.totp_secret


def provisioning_uri(user: User, issuer: str) -> str:
    return pyotp.TOTP(user.totp_secret).provisioning_uri(name=user.email, issuer_name=issuer)


def qr_svg(uri: str) -> bytes:
    """The QR code of `uri` as a standalone SVG document (rendered here, never fetched)."""
    # Here only: drawn once per person setting up two-step sign-in, so no served worker
    # keeps segno (about 1 MB) just in case (issue 19).
    import segno

    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=5, dark="#1a1a1a", light="#ffffff")
    return out.getvalue()


def _matching_step(user: User, code: str, now: datetime) -> int | None:
    # isdigit() alone takes "١٢٣" and "²": compare_digest refuses non-ASCII text.
    if not user.totp_secret or not (code.isascii() and code.isdigit()) or len(code) != 6:
        return None
    totp = pyotp.TOTP(user.totp_secret)
    current = totp.timecode(now)
    for step in (current, current - 1, current + 1):
        if secrets.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def confirm_enrolment(user: User, code: str | None, *, now: datetime) -> list[str]:
    """Switch two-step sign-in on when `code` matches; return fresh recovery codes."""
    step = _matching_step(user, _normalize(code), now)
    if user.mfa_enabled or step is None:
        audit.record("mfa.enrol_failed", actor=user, outcome="failure", now=now)
        raise ValidationError(WRONG_CODE, field="code")
    user.totp_enabled_at = now
    user.totp_last_step = step
    codes = new_recovery_codes(user, now=now)
    audit.record("mfa.enrolled", actor=user, obj=user, now=now)
    return codes


def new_recovery_codes(user: User, *, now: datetime) -> list[str]:
    """Replace the user's recovery codes; the raw codes are shown once and never stored."""
    db.session.execute(
        update(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    codes = []
    for _number in range(RECOVERY_CODE_COUNT):
        # 80 bits: kept only as an unsalted hash, a code must be too many to try them all
        # from a copy of the database (the 40-bit codes made before took minutes).
        raw = secrets.token_hex(RECOVERY_CODE_BYTES)
        codes.append("-".join(raw[start : start + 5] for start in range(0, len(raw), 5)))
        db.session.add(RecoveryCode(user_id=user.id, code_hash=tokens.digest(raw), created_at=now))
    db.session.flush()
    return codes


def verify_second_step(user: User, code: str | None, *, now: datetime) -> str:
    """Accept a current authenticator code or an unused recovery code; return which.

    Raises ValidationError (field `code`) otherwise, and for a code already used.
    """
    cleaned = _normalize(code)
    step = _matching_step(user, cleaned, now) if user.mfa_enabled else None
    if step is not None and _claim_step(user, step):
        audit.record("mfa.verified", actor=user, now=now)
        return "totp"
    if user.mfa_enabled and len(cleaned) in RECOVERY_CODE_LENGTHS:
        claimed = db.session.execute(
            update(RecoveryCode)
            .where(
                RecoveryCode.user_id == user.id,
                RecoveryCode.code_hash == tokens.digest(cleaned),
                RecoveryCode.used_at.is_(None),
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed == 1:
            audit.record("mfa.recovery_code_used", actor=user, now=now)
            return "recovery"
    audit.record("mfa.failed", actor=user, outcome="failure", now=now)
    raise ValidationError(WRONG_CODE, field="code")


def remaining_recovery_codes(user: User) -> int:
    """How many of the user's recovery codes are still unused."""
    return db.session.scalar(_UNUSED_CODES, {"user": user.id})


def renew_recovery_codes(user: User, password: str | None, *, now: datetime) -> list[str]:
    """New recovery codes for someone signed in who gives their password again."""
    accounts.confirm_password(user, password, purpose="new recovery codes", now=now)
    codes = new_recovery_codes(user, now=now)
    audit.record("mfa.recovery_codes_renewed", actor=user, obj=user, now=now)
    return codes


def disable(user: User, password: str | None, *, now: datetime) -> None:
    """Switch two-step sign-in off (family and patients only: staff must keep it), for
    someone signed in who gives their password again."""
    if user.is_staff:
        raise ValidationError(_("Staff accounts must keep two-step sign-in on."), field="code")
    accounts.confirm_password(user, password, purpose="two-step sign-in off", now=now)
    _clear(user, now=now)
    audit.record("mfa.disabled", actor=user, obj=user, now=now)


def reset(user: User, *, now: datetime, actor: User | None = None) -> bool:
    """For someone who lost both phone and codes (run by an operator, after checking who
    asks): two-step sign-in is cleared and their sessions end; staff enrol again at their
    next sign-in. Returns False, changing and auditing nothing, when there was none (not
    even one being set up)."""
    from familylink.services import sessions

    if user.totp_secret is None and user.totp_enabled_at is None:
        return False
    _clear(user, now=now)
    sessions.end_all_sessions(user.id, "mfa_reset", now=now)
    audit.record("mfa.reset", actor=actor, obj=user, now=now)
    return True


def _clear(user: User, *, now: datetime) -> None:
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    db.session.execute(
        update(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )


def _claim_step(user: User, step: int) -> bool:
    """Record `step` as the user's last code used, only if it is newer than the last one as
    stored now: of two requests with one code at once, one wins (a read of the user taken
    before the request's lock could let both through)."""
    claimed = db.session.execute(
        update(User)
        .where(
            User.id == user.id,
            or_(User.totp_last_step.is_(None), User.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed:
        set_committed_value(user, "totp_last_step", step)
    return bool(claimed)
