"""program setting: families may book a weekly series

Revision ID: da361f2cac43
Revises: 76b1d57b38f3
Create Date: 2026-11-30 11:00:00.000000

Off by default (and for the existing row): only the therapist books a weekly series until
the admin turns it on.
"""

import sqlalchemy as sa
from alembic import op

revision = "da361f2cac43"
down_revision = "76b1d57b38f3"
branch_labels = None
depends_on = None


def upgrade():
    # A plain ADD COLUMN with a constant default: both databases fill the existing row.
    setting = sa.Column(
        "families_may_book_series", sa.Boolean(), server_default=sa.false(), nullable=False
    )
    op.add_column("programs", setting)


def downgrade():
    with op.batch_alter_table("programs", schema=None) as batch_op:
        batch_op.drop_column("families_may_book_series")
