"""Progress and reflections belong to (family member, patient, module)

Revision ID: 4f2b9d7c1e05
Revises: 3c9e5a7d1f20
Create Date: 2026-11-30 00:30:00

Until now a family member had one progress row per module, and a shared reflection reached
the therapist of every patient they were linked to (issue 16). Each row now names the patient
it is about; a row with no patient is a reading of the member's own and is shared with nobody.

Upgrade, existing rows (sharing less when in doubt):
- a row whose member has exactly one assignment of that module (in any state) is about that
  assignment's patient, and keeps its sharing choice;
- any other row (no assignment, or assignments about several patients) gets no patient and
  its sharing is turned off: the reflection stays the member's, and reaches no therapist
  until they share it again, choosing the patient.

Downgrade: the old table allows one row per (member, module), so where a member has several
(about different patients) only the most recently updated is kept; and since the old rule
shows a shared reflection to the therapist of every linked patient, sharing is turned off for
every member linked to more than one patient.
"""

import sqlalchemy as sa
from alembic import op

revision = "4f2b9d7c1e05"
down_revision = "3c9e5a7d1f20"
branch_labels = None
depends_on = None

OWN_READING = sa.text("patient_id IS NULL")

# The one assignment of the row's module to the row's member, when there is exactly one.
_ASSIGNMENTS = (
    "FROM module_assignments a WHERE a.family_user_id = module_progress.family_user_id "
    "AND a.module_id = module_progress.module_id"
)


def upgrade():
    with op.batch_alter_table("module_progress", schema=None) as batch_op:
        batch_op.add_column(sa.Column("patient_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_module_progress_patient_id_users"), "users", ["patient_id"], ["id"]
        )
        batch_op.create_index(
            batch_op.f("ix_module_progress_patient_id"), ["patient_id"], unique=False
        )
    op.execute(
        f"UPDATE module_progress SET patient_id = (SELECT MIN(a.patient_id) {_ASSIGNMENTS}) "
        f"WHERE (SELECT COUNT(*) {_ASSIGNMENTS}) = 1"
    )
    op.execute(
        sa.text(
            "UPDATE module_progress SET reflection_shared = :off WHERE patient_id IS NULL"
        ).bindparams(off=False)
    )
    with op.batch_alter_table("module_progress", schema=None) as batch_op:
        batch_op.drop_constraint("uq_module_progress_family_user_id", type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_module_progress_family_user_id"),
            ["family_user_id", "patient_id", "module_id"],
        )
        batch_op.create_index(
            "uq_module_progress_own_reading",
            ["family_user_id", "module_id"],
            unique=True,
            sqlite_where=OWN_READING,
            postgresql_where=OWN_READING,
        )


def downgrade():
    op.execute(
        "DELETE FROM module_progress WHERE EXISTS (SELECT 1 FROM module_progress newer "
        "WHERE newer.family_user_id = module_progress.family_user_id "
        "AND newer.module_id = module_progress.module_id "
        "AND (newer.updated_at > module_progress.updated_at "
        "OR (newer.updated_at = module_progress.updated_at AND newer.id > module_progress.id)))"
    )
    op.execute(
        sa.text(
            "UPDATE module_progress SET reflection_shared = :off WHERE family_user_id IN ("
            "SELECT family_user_id FROM family_links GROUP BY family_user_id "
            "HAVING COUNT(DISTINCT patient_id) > 1)"
        ).bindparams(off=False)
    )
    with op.batch_alter_table("module_progress", schema=None) as batch_op:
        batch_op.drop_index("uq_module_progress_own_reading")
        batch_op.drop_constraint("uq_module_progress_family_user_id", type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_module_progress_family_user_id"), ["family_user_id", "module_id"]
        )
        batch_op.drop_index(batch_op.f("ix_module_progress_patient_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_module_progress_patient_id_users"), type_="foreignkey"
        )
        batch_op.drop_column("patient_id")
