"""program after-hours phone

Revision ID: 7b3d5f9a2c81
Revises: c4e1f7a9b2d3
Create Date: 2026-11-30 00:50:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7b3d5f9a2c81'
down_revision = 'c4e1f7a9b2d3'
branch_labels = None
depends_on = None


def upgrade():
    # Nullable, no default: an installation has no after-hours line until an admin sets one.
    with op.batch_alter_table('programs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('after_hours_phone', sa.String(length=32), nullable=True))


def downgrade():
    with op.batch_alter_table('programs', schema=None) as batch_op:
        batch_op.drop_column('after_hours_phone')
