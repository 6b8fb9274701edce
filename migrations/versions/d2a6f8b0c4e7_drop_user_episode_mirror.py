"""drop the users' episode columns: the episodes table is the one record

Revision ID: d2a6f8b0c4e7
Revises: 7b3d5f9a2c81
Create Date: 2026-11-30 03:20:00.000000

users.episode_start and users.episode_end mirrored the latest episode of care since
4e1a9c7d2f60; nothing read them. The downgrade puts them back, filled from each patient's
latest episode, as the code before this revision kept them.
"""

import sqlalchemy as sa
from alembic import op

import familylink.models.types

revision = "d2a6f8b0c4e7"
down_revision = "7b3d5f9a2c81"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("episode_end")
        batch_op.drop_column("episode_start")


def downgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("episode_start", familylink.models.types.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("episode_end", familylink.models.types.UTCDateTime(), nullable=True)
        )
    latest = (
        "(SELECT {column} FROM episodes WHERE episodes.patient_id = users.id "
        "ORDER BY episodes.number DESC LIMIT 1)"
    )
    op.execute(
        f"UPDATE users SET episode_start = {latest.format(column='started_on')}, "
        f"episode_end = {latest.format(column='ended_on')} WHERE role = 'patient'"
    )
