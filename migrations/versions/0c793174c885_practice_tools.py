"""practice tools for family members, and a tool suggested with an assigned reading

Revision ID: 0c793174c885
Revises: 41eb582cd9ad
Create Date: 2026-11-30 04:10:00.000000

practice_entries keeps what a family member writes in the practice tools (private unless they
share one entry with one patient's therapist); practice_message_versions keeps each wording
of a "say it so it can be heard" message. module_assignments.tool is the practice tool a
therapist suggests with a reading (nullable: existing assignments suggest none).
"""

import sqlalchemy as sa
from alembic import op

import familylink.models.types

revision = "0c793174c885"
down_revision = "41eb582cd9ad"
branch_labels = None
depends_on = None

ONE_SAFETY_PLAN = sa.text("kind = 'safety_plan'")


def upgrade():
    op.create_table(
        "practice_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("family_user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("shared_patient_id", sa.Integer(), nullable=True),
        sa.Column("created_at", familylink.models.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", familylink.models.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["family_user_id"],
            ["users.id"],
            name=op.f("fk_practice_entries_family_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["shared_patient_id"],
            ["users.id"],
            name=op.f("fk_practice_entries_shared_patient_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_practice_entries")),
    )
    with op.batch_alter_table("practice_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_practice_entries_family_user_id"), ["family_user_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_practice_entries_shared_patient_id"),
            ["shared_patient_id"],
            unique=False,
        )
        batch_op.create_index(
            "uq_practice_entries_one_safety_plan",
            ["family_user_id"],
            unique=True,
            sqlite_where=ONE_SAFETY_PLAN,
            postgresql_where=ONE_SAFETY_PLAN,
        )

    op.create_table(
        "practice_message_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("checked", sa.JSON(), nullable=False),
        sa.Column("created_at", familylink.models.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["practice_entries.id"],
            name=op.f("fk_practice_message_versions_entry_id_practice_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_practice_message_versions")),
        sa.UniqueConstraint(
            "entry_id", "number", name=op.f("uq_practice_message_versions_entry_id")
        ),
    )
    with op.batch_alter_table("practice_message_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_practice_message_versions_entry_id"), ["entry_id"], unique=False
        )

    with op.batch_alter_table("module_assignments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tool", sa.String(length=20), nullable=True))


def downgrade():
    with op.batch_alter_table("module_assignments", schema=None) as batch_op:
        batch_op.drop_column("tool")
    with op.batch_alter_table("practice_message_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_practice_message_versions_entry_id"))
    op.drop_table("practice_message_versions")
    with op.batch_alter_table("practice_entries", schema=None) as batch_op:
        batch_op.drop_index("uq_practice_entries_one_safety_plan")
        batch_op.drop_index(batch_op.f("ix_practice_entries_shared_patient_id"))
        batch_op.drop_index(batch_op.f("ix_practice_entries_family_user_id"))
    op.drop_table("practice_entries")
