"""Single-use, expiring tokens bound to one address (verification, reset, invitations)."""

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select, update

from familylink.extensions import db
from familylink.models import AccountToken, TokenPurpose, User
from familylink.services import audit
from familylink.services.errors import InvalidToken

EXPIRED_OR_INVALID = _l(
    "This link is not valid any more. It may have expired or been used already."
)


def digest(raw: str) -> str:
    """What the database keeps of a raw token: its SHA-256, in hex."""
    return hashlib.sha256(raw.encode()).hexdigest()


def keyed_digest(value: str) -> str:
    """A hash of `value` keyed with SECRET_KEY (128 bits, in hex): a name made from something
    the database keeps that only the app can make, not whoever has a copy of the database."""
    secret = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.digest(secret, value.encode(), "sha256").hex()[:32]


def expires_at(purpose: str, now: datetime) -> datetime:
    """When a `purpose` token issued at `now` stops opening anything (its emailed link with it)."""
    return now + timedelta(hours=current_app.config["TOKEN_LIFETIMES_HOURS"][purpose])


def issue_token(
    purpose: str,
    *,
    email: str,
    now: datetime,
    user: User | None = None,
    payload: dict | None = None,
    lifetime: timedelta | None = None,
    locale: str | None = None,
) -> str:
    """Store a new token and return its raw value, which only the emailed link carries."""
    raw = secrets.token_urlsafe(32)
    db.session.add(
        AccountToken(
            token_hash=digest(raw),
            purpose=purpose,
            email=email.lower(),
            user_id=user.id if user else None,
            payload=payload,
            created_at=now,
            expires_at=expires_at(purpose, now) if lifetime is None else now + lifetime,
            locale=locale,
        )
    )
    db.session.flush()
    return raw


def find_valid_token(raw: str | None, purpose: str, *, now: datetime) -> AccountToken:
    """Return the unused, unexpired token of that purpose, or raise InvalidToken."""
    if not raw or len(raw) > 100:
        raise InvalidToken(EXPIRED_OR_INVALID)
    token = db.session.scalar(
        select(AccountToken).where(
            AccountToken.token_hash == digest(raw), AccountToken.purpose == purpose
        )
    )
    if token is None or token.used_at is not None or token.expires_at <= now:
        raise InvalidToken(EXPIRED_OR_INVALID)
    return token


def consume_token(raw: str | None, purpose: str, *, now: datetime) -> AccountToken:
    """Mark the token used and return it; a second use, even a concurrent one, is refused."""
    token = find_valid_token(raw, purpose, now=now)
    # Conditional update: of two racing requests only one sees a row change.
    claimed = db.session.execute(
        update(AccountToken)
        .where(AccountToken.id == token.id, AccountToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        raise InvalidToken(EXPIRED_OR_INVALID)
    db.session.refresh(token)
    return token


def revoke_tokens(purpose: str, *, email: str, now: datetime) -> None:
    """Use up every open token of that purpose for an address (a newer one replaces them)."""
    db.session.execute(
        update(AccountToken)
        .where(
            AccountToken.purpose == purpose,
            AccountToken.email == email.lower(),
            AccountToken.used_at.is_(None),
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )


#: The links that could set an account's password or move its address.
ACCOUNT_LINKS = (TokenPurpose.RESET, TokenPurpose.INVITE, TokenPurpose.EMAIL_CHANGE)


def revoke_account_links(
    user_id: int, *, now: datetime, purposes: tuple[TokenPurpose, ...] = ACCOUNT_LINKS
) -> None:
    """Use up every open link of the account for `purposes` (by default every link that
    could set its password or move its address): a new password or address ends what was
    issued before it, so a link sent while someone else held the password, or to an
    address since replaced, no longer takes the account."""
    db.session.execute(
        update(AccountToken)
        .where(
            AccountToken.user_id == user_id,
            AccountToken.purpose.in_(purposes),
            AccountToken.used_at.is_(None),
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )


def purge_expired(now: datetime) -> int:
    """Remove every token past its end, used or not (the mail worker's sweep, and `flask
    account purge-tokens`): it opens nothing, the same answer as no token at all, and it
    keeps an address. One audit row counts them (never whose); returns how many."""
    removed = db.session.execute(
        delete(AccountToken)
        .where(AccountToken.expires_at <= now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if removed:
        audit.record("account.tokens_purged", detail={"tokens": removed}, now=now)
    return removed


def keep_invitations_with_the_person(user: User, old_address: str, *, now: datetime) -> None:
    """Family invitations sent to the old address and not yet accepted stay this person's:
    they may still accept them signed in at the new address, and nobody who registers the
    old address later can. Links and accepted consents are keyed to the person already."""
    pending = db.session.scalars(
        select(AccountToken).where(
            AccountToken.purpose == TokenPurpose.FAMILY_INVITE,
            AccountToken.email == old_address.lower(),
            AccountToken.user_id.is_(None),
            AccountToken.used_at.is_(None),
            AccountToken.expires_at > now,
        )
    )
    for token in pending:
        token.user_id = user.id
