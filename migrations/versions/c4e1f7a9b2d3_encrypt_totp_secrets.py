"""Encrypt the two-step sign-in (TOTP) secrets at rest with SECRETS_KEYS

Revision ID: c4e1f7a9b2d3
Revises: 4f2b9d7c1e05
Create Date: 2026-11-30 00:40:00

The column grows to hold a Fernet token; every existing secret is encrypted with the newest
key of SECRETS_KEYS (the app's start-up check has set them; `flask db upgrade` runs inside
the app). The downgrade decrypts them again.
"""

import sqlalchemy as sa
from alembic import op

from familylink.models.encryption import keyring

revision = "c4e1f7a9b2d3"
down_revision = "4f2b9d7c1e05"
branch_labels = None
depends_on = None


def _convert(change) -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, totp_secret FROM users WHERE totp_secret IS NOT NULL"))
    updates = [{"id": uid, "secret": change(secret)} for uid, secret in rows]
    if updates:
        conn.execute(sa.text("UPDATE users SET totp_secret = :secret WHERE id = :id"), updates)


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column(
            "totp_secret", existing_type=sa.String(length=64), type_=sa.String(length=255)
        )
    _convert(lambda secret: keyring().encrypt(secret.encode()).decode())


def downgrade():
    _convert(lambda token: keyring().decrypt(token.encode()).decode())
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column(
            "totp_secret", existing_type=sa.String(length=255), type_=sa.String(length=64)
        )
