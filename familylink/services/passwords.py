"""Password rules and argon2id hashing."""

from functools import cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from flask_babel import gettext as _

from familylink.services.errors import ValidationError

MIN_LENGTH = 12
MAX_LENGTH = 128
COMMON_PASSWORDS_FILE = Path(__file__).resolve().parent.parent / "common-passwords.txt"


@cache
def common_passwords() -> frozenset[str]:
    """The 10,000 most common passwords (see docs/security.md for where the list comes from)."""
    return frozenset(COMMON_PASSWORDS_FILE.read_text().split())


def _hasher() -> PasswordHasher:
    params = current_app.config.get("ARGON2_PARAMETERS")
    return PasswordHasher(**params) if params else PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when the password matches. An account without a password never matches."""
    if not password_hash:
        # Spend the same time as a real check, so a missing account is not visible by timing.
        _hasher().hash(password)
        return False
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def check_password_rules(password: str, *, email: str = "", program_name: str = "") -> None:
    """Raise ValidationError (field `password`) when the password is too weak.

    Length 12 to 128 with no composition rules (NIST SP 800-63B); refused when common or
    when it contains the address's local part or the program's name.
    """
    if len(password) < MIN_LENGTH:
        raise ValidationError(
            _("Use at least %(count)s characters.", count=MIN_LENGTH), field="password"
        )
    if len(password) > MAX_LENGTH:
        raise ValidationError(
            _("Use at most %(count)s characters.", count=MAX_LENGTH), field="password"
        )
    lowered = password.lower()
    if lowered in common_passwords() or len(set(lowered)) < 4:
        raise ValidationError(
            _("This password is too common. Try a few unrelated words together."),
            field="password",
        )
    local_part = email.split("@", 1)[0].lower()
    if len(local_part) >= 4 and local_part in lowered:
        raise ValidationError(_("Don't use your email address in your password."), field="password")
    if program_name and len(program_name) >= 4 and program_name.lower() in lowered:
        raise ValidationError(_("Don't use the program's name in your password."), field="password")
