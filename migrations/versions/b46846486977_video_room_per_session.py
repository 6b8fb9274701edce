"""a private room per video session: tokens on appointments, the room template on the
program; the per-type video link goes

Revision ID: b46846486977
Revises: 334ad1dd6af0
Create Date: 2026-11-30 04:30:00.000000

session_types.video_link gave every session of a type the same room, and every family that
ever booked one held it in emails and calendar files. Each appointment now gets its own
join token (the link emails carry, /join/<token>) and room token (the room's name in the
program's room template), filled here for every existing appointment, so sessions already
booked have their own room as soon as the admin sets a room template (or their therapist
pastes a link on each); until then their join link says the room is not ready yet. The old
per-type links are dropped, not carried over: they are the shared rooms being retired. The
downgrade brings the column back empty.
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "b46846486977"
down_revision = "334ad1dd6af0"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("join_token", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("room_token", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("room_link", sa.String(length=500), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_appointments_join_token"), ["join_token"])
    with op.batch_alter_table("programs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("video_room_template", sa.String(length=300), nullable=True))
    appointments = sa.table(
        "appointments",
        sa.column("id", sa.Integer),
        sa.column("join_token", sa.String),
        sa.column("room_token", sa.String),
    )
    connection = op.get_bind()
    ids = connection.execute(sa.select(appointments.c.id)).scalars().all()
    for appointment_id in ids:
        connection.execute(
            appointments.update()
            .where(appointments.c.id == appointment_id)
            .values(join_token=secrets.token_urlsafe(24), room_token=secrets.token_urlsafe(24))
        )
    with op.batch_alter_table("session_types", schema=None) as batch_op:
        batch_op.drop_column("video_link")


def downgrade():
    with op.batch_alter_table("session_types", schema=None) as batch_op:
        batch_op.add_column(sa.Column("video_link", sa.String(length=500), nullable=True))
    with op.batch_alter_table("programs", schema=None) as batch_op:
        batch_op.drop_column("video_room_template")
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_appointments_join_token"), type_="unique")
        batch_op.drop_column("room_link")
        batch_op.drop_column("room_token")
        batch_op.drop_column("join_token")
