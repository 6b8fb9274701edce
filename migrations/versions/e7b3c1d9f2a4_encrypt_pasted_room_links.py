"""Encrypt the video links therapists paste on a session, at rest with SECRETS_KEYS

Revision ID: e7b3c1d9f2a4
Revises: da361f2cac43
Create Date: 2026-12-02 19:20:00

A pasted link may carry its room's passcode. The column grows to hold a Fernet token (a
500-character link takes about 760), and every existing link is encrypted with the newest
key of SECRETS_KEYS (the app's start-up check has set them; `flask db upgrade` runs inside
the app), as c4e1f7a9b2d3 did for the two-step sign-in secrets. The downgrade decrypts them.
"""

import sqlalchemy as sa
from alembic import op

from familylink.models.encryption import keyring

revision = "e7b3c1d9f2a4"
down_revision = "da361f2cac43"
branch_labels = None
depends_on = None


def _convert(change) -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.text("SELECT id, room_link FROM appointments WHERE room_link IS NOT NULL")
    )
    updates = [{"id": row_id, "link": change(link)} for row_id, link in rows]
    if updates:
        conn.execute(sa.text("UPDATE appointments SET room_link = :link WHERE id = :id"), updates)


def upgrade():
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.alter_column(
            "room_link", existing_type=sa.String(length=500), type_=sa.String(length=1000)
        )
    _convert(lambda link: keyring().encrypt(link.encode()).decode())


def downgrade():
    _convert(lambda token: keyring().decrypt(token.encode()).decode())
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.alter_column(
            "room_link", existing_type=sa.String(length=1000), type_=sa.String(length=500)
        )
