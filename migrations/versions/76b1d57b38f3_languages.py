"""Languages: each person's, the invitation's and the one a consent was signed in

Revision ID: 76b1d57b38f3
Revises: 26ef8992b759
Create Date: 2026-11-30 11:20:00

"""

import sqlalchemy as sa
from alembic import op

revision = "76b1d57b38f3"
down_revision = "26ef8992b759"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("locale", sa.String(length=8), nullable=False, server_default="en"))
    with op.batch_alter_table("account_tokens") as batch_op:
        batch_op.add_column(sa.Column("locale", sa.String(length=8), nullable=True))
    with op.batch_alter_table("consent_records") as batch_op:
        batch_op.add_column(sa.Column("locale", sa.String(length=8), nullable=False, server_default="en"))


def downgrade():
    with op.batch_alter_table("consent_records") as batch_op:
        batch_op.drop_column("locale")
    with op.batch_alter_table("account_tokens") as batch_op:
        batch_op.drop_column("locale")
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("locale")
