"""Consent option: may the recipient see the other family members the patient shares with

Revision ID: 8d3f6a1c2b7e
Revises: 5b7e0c2d9a41
Create Date: 2026-11-29 21:40:00

Existing consents were signed without the option, so they keep it off (the server default).
"""

import sqlalchemy as sa
from alembic import op

revision = "8d3f6a1c2b7e"
down_revision = "5b7e0c2d9a41"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("consent_records", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("family_visible", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade():
    with op.batch_alter_table("consent_records", schema=None) as batch_op:
        batch_op.drop_column("family_visible")
