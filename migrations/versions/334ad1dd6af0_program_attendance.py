"""program attendance: the patient's attendance at each program day

Revision ID: 334ad1dd6af0
Revises: d2a6f8b0c4e7
Create Date: 2026-11-30 04:15:00.000000

One row per patient and program day, recorded by their therapist; a correction updates the
row (the audit log keeps the value it replaced). Nothing existed before to carry over: the
seats' attendance is a family's attendance at a family session, a different thing.
"""

import sqlalchemy as sa
from alembic import op

import familylink.models.types

revision = "334ad1dd6af0"
down_revision = "d2a6f8b0c4e7"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "program_attendance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=False),
        sa.Column("recorded_at", familylink.models.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["users.id"], name=op.f("fk_program_attendance_patient_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"],
            ["users.id"],
            name=op.f("fk_program_attendance_recorded_by_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_program_attendance")),
        sa.UniqueConstraint("patient_id", "day", name=op.f("uq_program_attendance_patient_id")),
    )
    with op.batch_alter_table("program_attendance", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_program_attendance_patient_id"), ["patient_id"], unique=False
        )


def downgrade():
    with op.batch_alter_table("program_attendance", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_program_attendance_patient_id"))
    op.drop_table("program_attendance")
