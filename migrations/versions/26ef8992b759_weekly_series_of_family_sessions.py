"""weekly series of private family sessions: appointment_series, appointments.weekly_series_id

Revision ID: 26ef8992b759
Revises: 46b7c8ae3d97
Create Date: 2026-11-30 08:00:00.000000

A therapist books a private family session for N weeks at the same local wall time; each
occurrence stays its own appointment (moved, cancelled and sent as its own .ics), and
appointment_series ties them together with what was chosen: weekday, local time and the zone
it was chosen in. Existing appointments belong to no series (NULL).
"""

import sqlalchemy as sa
from alembic import op

import familylink.models.types

revision = "26ef8992b759"
down_revision = "46b7c8ae3d97"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "appointment_series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("therapist_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("session_type_id", sa.Integer(), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("local_time", sa.Time(), nullable=False),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("created_at", familylink.models.types.UTCDateTime(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_appointment_series_created_by_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["users.id"], name=op.f("fk_appointment_series_patient_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["session_type_id"],
            ["session_types.id"],
            name=op.f("fk_appointment_series_session_type_id_session_types"),
        ),
        sa.ForeignKeyConstraint(
            ["therapist_id"], ["users.id"], name=op.f("fk_appointment_series_therapist_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointment_series")),
    )
    with op.batch_alter_table("appointment_series", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_appointment_series_patient_id"), ["patient_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_appointment_series_therapist_id"), ["therapist_id"], unique=False
        )
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("weekly_series_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_appointments_weekly_series_id"), ["weekly_series_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_appointments_weekly_series_id_appointment_series"),
            "appointment_series",
            ["weekly_series_id"],
            ["id"],
        )


def downgrade():
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_appointments_weekly_series_id_appointment_series"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_appointments_weekly_series_id"))
        batch_op.drop_column("weekly_series_id")
    with op.batch_alter_table("appointment_series", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_appointment_series_therapist_id"))
        batch_op.drop_index(batch_op.f("ix_appointment_series_patient_id"))
    op.drop_table("appointment_series")
