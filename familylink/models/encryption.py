"""Secrets encrypted at rest (TOTP secrets, pasted video links), with the keys from SECRETS_KEYS.

SECRETS_KEYS is a list of Fernet keys, newest first: values are encrypted with the newest
and read with any of them, so a new key can be put in front and the old ones removed once
`flask secrets rotate` has re-encrypted every value under the new one.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app
from sqlalchemy import String
from sqlalchemy.types import TypeDecorator

__all__ = ["EncryptedString", "InvalidToken", "dev_key", "keyring", "parse_keys"]


def parse_keys(value) -> list[str]:
    """The keys of a SECRETS_KEYS value (a list, or a comma-separated string), in order."""
    if not value:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [item.strip() for item in items if item and item.strip()]


def dev_key() -> str:
    """The fixed key of debug mode and tests (never for real data). Fixed, not derived from
    SECRET_KEY, because debug mode makes up a new SECRET_KEY at each start when none is
    set, and the secrets saved before would no longer open."""
    digest = hashlib.sha256(b"familylink development secrets key, not for real data").digest()
    return base64.urlsafe_b64encode(digest).decode()


_rings: dict[tuple[str, ...], MultiFernet] = {}


def keyring() -> MultiFernet:
    """The app's keys, newest first (set by the start-up check of SECRETS_KEYS)."""
    keys = tuple(current_app.config["SECRETS_KEYS"])
    ring = _rings.get(keys)
    if ring is None:
        ring = _rings[keys] = MultiFernet([Fernet(key) for key in keys])
    return ring


class EncryptedString(TypeDecorator):
    """A string stored as a Fernet token: encrypted with the newest key, read with any.
    `EncryptedString(n)` stores n characters of token: about 4/3 of the value plus 100."""

    impl = String
    cache_ok = True

    def __init__(self, length: int = 255):
        super().__init__(length)

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        return keyring().encrypt(value.encode()).decode()

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return keyring().decrypt(value.encode()).decode()
