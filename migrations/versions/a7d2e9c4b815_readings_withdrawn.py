"""Released readings withdrawn, and the member's notes on them, when their access ends

Revision ID: a7d2e9c4b815
Revises: f3a8c6d1b2e7
Create Date: 2026-12-03 17:10:00

`module_assignments.stopped_at` now also marks a *released* reading withdrawn when the family
member's access about the patient ended (before, only unreleased ones were stopped), so a
later consent shows only readings released under it (docs/learning.md, docs/privacy.md rule
5). `module_progress.withdrawn_at` (nullable, no default): the member's notes on readings
about the patient made before their access ended; they stay the member's, but no page
presents them as a reading about the patient again. One current row per (member, patient,
module) now: the unique constraint becomes a unique index over rows not withdrawn.

When in doubt, share less: a release followed by the end of a consent of that patient to
that member (revoked or expired, closed at or after the release) is withdrawn as of that
end; so are the member's notes about that patient first opened (or, never opened, last
saved) at or before such an end. The downgrade keeps the stopped readings stopped (a
stopped released reading was never shown by the code before this either) and fails, as it
should, when a member has both withdrawn and current notes on one reading.
"""

import sqlalchemy as sa
from alembic import op

import familylink.models.types

revision = "a7d2e9c4b815"
down_revision = "f3a8c6d1b2e7"
branch_labels = None
depends_on = None

CURRENT = sa.text("withdrawn_at IS NULL")


def _first_end_after(table: str, at: str) -> str:
    """The first revocation or expiry of that patient's consent to that member at or after
    the row's `at` column."""
    return f"""
        SELECT MIN(cc.closed_at)
        FROM consent_closures cc
        JOIN consent_records c ON c.id = cc.consent_id
        WHERE c.patient_id = {table}.patient_id
          AND c.recipient_user_id = {table}.family_user_id
          AND cc.reason IN ('revoked', 'expired')
          AND cc.closed_at >= {at}
    """


def upgrade():
    with op.batch_alter_table("module_progress", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("withdrawn_at", familylink.models.types.UTCDateTime(), nullable=True)
        )
        batch_op.drop_constraint("uq_module_progress_family_user_id", type_="unique")
        batch_op.create_index(
            "uq_module_progress_current",
            ["family_user_id", "patient_id", "module_id"],
            unique=True,
            sqlite_where=CURRENT,
            postgresql_where=CURRENT,
        )
    released = "module_assignments.released_at"
    op.execute(
        f"""
        UPDATE module_assignments
        SET stopped_at = ({_first_end_after("module_assignments", released)})
        WHERE released_at IS NOT NULL AND stopped_at IS NULL
        """
    )
    since = "COALESCE(module_progress.opened_at, module_progress.updated_at)"
    op.execute(
        f"""
        UPDATE module_progress
        SET withdrawn_at = ({_first_end_after("module_progress", since)})
        WHERE patient_id IS NOT NULL AND withdrawn_at IS NULL
        """
    )


def downgrade():
    with op.batch_alter_table("module_progress", schema=None) as batch_op:
        batch_op.drop_index("uq_module_progress_current")
        batch_op.create_unique_constraint(
            batch_op.f("uq_module_progress_family_user_id"),
            ["family_user_id", "patient_id", "module_id"],
        )
        batch_op.drop_column("withdrawn_at")
