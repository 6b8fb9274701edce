"""Keeping the values stored encrypted (`models.encryption.EncryptedString`: two-step
sign-in secrets, pasted video links) under the newest key of SECRETS_KEYS."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, String, select, text, type_coerce

from familylink.extensions import db
from familylink.models.encryption import EncryptedString, keyring
from familylink.services import audit


def encrypted_columns() -> list[Column]:
    """Every column stored encrypted, found in the models: one added later is rotated too."""
    return [
        column
        for table in db.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, EncryptedString)
    ]


def rotate_secrets(*, now: datetime, progress=None, batch: int = 500) -> int:
    """Re-encrypt every stored encrypted value under the newest key of SECRETS_KEYS (run after
    putting a new key first; the old keys may be removed once it is done). Returns how many
    values were re-encrypted (not those changed meanwhile, left as they are); `progress(done,
    total)` is called after each batch of values read."""
    ring, stored = keyring(), []
    for column in encrypted_columns():
        table = column.table
        token = type_coerce(column, String)  # as stored, not decrypted
        rows = db.session.execute(
            select(table.c.id, token).where(column.is_not(None)).order_by(table.c.id)
        ).all()
        # Names from the models, never from input.
        # Only if unchanged since read: a value written or cleared meanwhile (a link pasted,
        # forgotten after its session) is already under the newest key, or gone.
        change = text(
            f"UPDATE {table.name} SET {column.name} = :token"  # noqa: S608
            f" WHERE id = :id AND {column.name} = :old"
        )
        stored.append((change, rows))
    total, done, rewritten = sum(len(rows) for _, rows in stored), 0, 0
    for change, rows in stored:
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            rotated = [
                {"id": i, "old": value, "token": ring.rotate(value.encode()).decode()}
                for i, value in chunk
            ]
            rewritten += db.session.execute(change, rotated).rowcount
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    audit.record("secrets.rotated", detail={"count": rewritten}, now=now)
    return rewritten
