"""A progress update's release withdrawn when the member's access ends

Revision ID: f3a8c6d1b2e7
Revises: e7b3c1d9f2a4
Create Date: 2026-12-03 15:10:00

`progress_update_recipients.withdrawn_at`: set when the family member's access about the
patient ends (or a renewal no longer covers progress), so a later consent does not show an
update released before then again (docs/privacy.md, rule 19). Nullable, no default.

When in doubt, share less: a release followed by the end of a consent of that patient to
that member (revoked or expired, closed at or after the release) is withdrawn as of that
end. A narrower renewal that dropped progress before this migration is not replayed (its
audit row names the scopes, not a column this could join on cheaply): such an update shows
again only if a later consent covers progress, as it did before.
"""

import sqlalchemy as sa
from alembic import op

import familylink.models.types

revision = "f3a8c6d1b2e7"
down_revision = "e7b3c1d9f2a4"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("progress_update_recipients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("withdrawn_at", familylink.models.types.UTCDateTime(), nullable=True)
        )
    op.execute(
        """
        UPDATE progress_update_recipients SET withdrawn_at = (
            SELECT MIN(cc.closed_at)
            FROM consent_closures cc
            JOIN consent_records c ON c.id = cc.consent_id
            JOIN progress_updates u ON u.id = progress_update_recipients.update_id
            WHERE c.patient_id = u.patient_id
              AND c.recipient_user_id = progress_update_recipients.family_user_id
              AND cc.reason IN ('revoked', 'expired')
              AND cc.closed_at >= progress_update_recipients.released_at
        )
        WHERE released_at IS NOT NULL AND withdrawn_at IS NULL
        """
    )


def downgrade():
    with op.batch_alter_table("progress_update_recipients", schema=None) as batch_op:
        batch_op.drop_column("withdrawn_at")
