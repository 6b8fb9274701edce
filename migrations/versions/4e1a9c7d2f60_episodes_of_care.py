"""Episodes of care: a patient's enrolment-to-discharge spans, and the episode each consent follows

Revision ID: 4e1a9c7d2f60
Revises: 8d3f6a1c2b7e
Create Date: 2026-11-30 00:30:00

Every existing patient gets episode 1 from their episode columns (started at enrolment, or
when the account was made if no start was recorded; ended if an end was recorded), and each
of their consents is tied to it: the only episode there was when it was signed.
"""

import sqlalchemy as sa
from alembic import op

import familylink.models.types

revision = "4e1a9c7d2f60"
down_revision = "8d3f6a1c2b7e"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "episodes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("started_on", familylink.models.types.UTCDateTime(), nullable=False),
        sa.Column("ended_on", familylink.models.types.UTCDateTime(), nullable=True),
        sa.Column("end_reason", sa.String(length=20), nullable=True),
        sa.Column("ended_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", familylink.models.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ended_by_id"], ["users.id"], name=op.f("fk_episodes_ended_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["users.id"], name=op.f("fk_episodes_patient_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_episodes")),
        sa.UniqueConstraint("patient_id", "number", name=op.f("uq_episodes_patient_id")),
    )
    with op.batch_alter_table("episodes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_episodes_patient_id"), ["patient_id"], unique=False)
    with op.batch_alter_table("consent_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("episode_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_consent_records_episode_id"), ["episode_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_consent_records_episode_id_episodes"), "episodes", ["episode_id"], ["id"]
        )
    op.execute(
        "INSERT INTO episodes (patient_id, number, started_on, ended_on, created_at) "
        "SELECT id, 1, COALESCE(episode_start, created_at), episode_end, created_at "
        "FROM users WHERE role = 'patient'"
    )
    op.execute(
        "UPDATE consent_records SET episode_id = "
        "(SELECT episodes.id FROM episodes WHERE episodes.patient_id = consent_records.patient_id)"
    )


def downgrade():
    with op.batch_alter_table("consent_records", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_consent_records_episode_id_episodes"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_consent_records_episode_id"))
        batch_op.drop_column("episode_id")
    with op.batch_alter_table("episodes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_episodes_patient_id"))
    op.drop_table("episodes")
