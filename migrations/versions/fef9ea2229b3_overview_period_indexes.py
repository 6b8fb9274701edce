"""indexes for the program overview's periods

Revision ID: fef9ea2229b3
Revises: 0c793174c885
Create Date: 2026-11-30 08:10:00.000000

The overview counts rows of the whole program by when they happened (a range on one
timestamp column each); without these indexes each count read its whole table. The group
places count reads only group sessions (a partial index, capacity > 1).
"""

import sqlalchemy as sa
from alembic import op

revision = "fef9ea2229b3"
down_revision = "0c793174c885"
branch_labels = None
depends_on = None

GROUPS = sa.text("capacity > 1")


def upgrade():
    op.create_index("ix_appointments_starts_at", "appointments", ["starts_at"])
    op.create_index(
        "ix_appointments_group_starts",
        "appointments",
        ["starts_at"],
        postgresql_where=GROUPS,
        sqlite_where=GROUPS,
    )
    op.create_index("ix_consent_records_signed_at", "consent_records", ["signed_at"])
    op.create_index("ix_consent_closures_closed_at", "consent_closures", ["closed_at"])
    op.create_index("ix_episodes_started_on", "episodes", ["started_on"])


def downgrade():
    op.drop_index("ix_episodes_started_on", table_name="episodes")
    op.drop_index("ix_consent_closures_closed_at", table_name="consent_closures")
    op.drop_index("ix_consent_records_signed_at", table_name="consent_records")
    op.drop_index("ix_appointments_group_starts", table_name="appointments")
    op.drop_index("ix_appointments_starts_at", table_name="appointments")
