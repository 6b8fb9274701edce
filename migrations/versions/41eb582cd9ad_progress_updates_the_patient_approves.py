"""progress updates the patient approves

Revision ID: 41eb582cd9ad
Revises: b46846486977
Create Date: 2026-11-30 04:04:29.181151

Progress updates (issue 20 point 1): an update about a patient, each text the therapist
wrote for it (the patient approves one exact version), and the family members it is for.
New tables only; nothing existing changes.
"""
from alembic import op
import sqlalchemy as sa

import familylink.models.types


revision = '41eb582cd9ad'
down_revision = 'b46846486977'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('progress_updates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('therapist_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_at', familylink.models.types.UTCDateTime(), nullable=False),
    sa.Column('decided_at', familylink.models.types.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['patient_id'], ['users.id'], name=op.f('fk_progress_updates_patient_id_users')),
    sa.ForeignKeyConstraint(['therapist_id'], ['users.id'], name=op.f('fk_progress_updates_therapist_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_progress_updates'))
    )
    with op.batch_alter_table('progress_updates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_progress_updates_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_progress_updates_therapist_id'), ['therapist_id'], unique=False)

    op.create_table('progress_update_recipients',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('update_id', sa.Integer(), nullable=False),
    sa.Column('family_user_id', sa.Integer(), nullable=False),
    sa.Column('released_at', familylink.models.types.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['family_user_id'], ['users.id'], name=op.f('fk_progress_update_recipients_family_user_id_users')),
    sa.ForeignKeyConstraint(['update_id'], ['progress_updates.id'], name=op.f('fk_progress_update_recipients_update_id_progress_updates')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_progress_update_recipients')),
    sa.UniqueConstraint('update_id', 'family_user_id', name=op.f('uq_progress_update_recipients_update_id'))
    )
    with op.batch_alter_table('progress_update_recipients', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_progress_update_recipients_family_user_id'), ['family_user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_progress_update_recipients_update_id'), ['update_id'], unique=False)

    op.create_table('progress_update_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('update_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', familylink.models.types.UTCDateTime(), nullable=False),
    sa.Column('approved_at', familylink.models.types.UTCDateTime(), nullable=True),
    sa.Column('change_note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['update_id'], ['progress_updates.id'], name=op.f('fk_progress_update_versions_update_id_progress_updates')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_progress_update_versions')),
    sa.UniqueConstraint('update_id', 'number', name=op.f('uq_progress_update_versions_update_id'))
    )
    with op.batch_alter_table('progress_update_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_progress_update_versions_update_id'), ['update_id'], unique=False)



def downgrade():
    with op.batch_alter_table('progress_update_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_progress_update_versions_update_id'))

    op.drop_table('progress_update_versions')
    with op.batch_alter_table('progress_update_recipients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_progress_update_recipients_update_id'))
        batch_op.drop_index(batch_op.f('ix_progress_update_recipients_family_user_id'))

    op.drop_table('progress_update_recipients')
    with op.batch_alter_table('progress_updates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_progress_updates_therapist_id'))
        batch_op.drop_index(batch_op.f('ix_progress_updates_patient_id'))

    op.drop_table('progress_updates')
