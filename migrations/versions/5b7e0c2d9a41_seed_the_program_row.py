"""seed the program row

Revision ID: 5b7e0c2d9a41
Revises: 1fccd79c7884
Create Date: 2026-11-29 20:45:00.000000

"""
from alembic import op
import sqlalchemy as sa

from familylink.models.accounts import PROGRAM_DEFAULTS


# revision identifiers, used by Alembic.
revision = '5b7e0c2d9a41'
down_revision = '1fccd79c7884'
branch_labels = None
depends_on = None

# The table as it is at this revision, not as the models may make it later: a column added
# after this revision (and to PROGRAM_DEFAULTS) must not be inserted here.
programs = sa.table(
    'programs',
    sa.column('name', sa.String),
    sa.column('sender_name', sa.String),
    sa.column('timezone', sa.String),
    sa.column('reminder_offsets_hours', sa.JSON),
    sa.column('cancellation_window_hours', sa.Integer),
    sa.column('booking_horizon_days', sa.Integer),
    sa.column('minimum_notice_hours', sa.Integer),
    sa.column('waitlist_hold_hours', sa.Integer),
    sa.column('buffer_minutes', sa.Integer),
)


def upgrade():
    # The app only reads the program row; a fresh install gets it here. An install whose row
    # was already made (by the app before this revision) keeps its settings.
    connection = op.get_bind()
    if connection.scalar(sa.select(sa.func.count()).select_from(programs)) == 0:
        op.bulk_insert(programs, [{c.name: PROGRAM_DEFAULTS[c.name] for c in programs.columns}])


def downgrade():
    # Nothing: the row may hold an admin's settings by now, and the code before this revision
    # works with the row present.
    pass
