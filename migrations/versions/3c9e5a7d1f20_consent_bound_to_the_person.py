"""Consents and family links keyed to the person, not the address

Revision ID: 3c9e5a7d1f20
Revises: 4e1a9c7d2f60
Create Date: 2026-11-30 00:20:00

Until now a consent reached a family member when its address matched the address stored on
their link when they accepted, so an email change split the person from their consents
(issue 16). Each consent now names the person who accepted it (`recipient_user_id`), and a
link is the pair (patient, family member) alone.

Existing data is moved, not dropped: a consent is bound to the member whose link carried its
address (exactly whom it reached before); then an open consent still unbound whose address
is the current address of a member already linked to that patient (one signed after their
email change, which reached nobody) is bound to that member. Nothing is closed here: when a
person ends up with two consents in force, the newest decides what they see, and revoking
either warns about the other. The downgrade puts each link's address back from the member's
current address.
"""

import sqlalchemy as sa
from alembic import op

revision = "3c9e5a7d1f20"
down_revision = "4e1a9c7d2f60"
branch_labels = None
depends_on = None

consents = sa.table(
    "consent_records",
    sa.column("id", sa.Integer),
    sa.column("patient_id", sa.Integer),
    sa.column("recipient_email", sa.String),
    sa.column("recipient_user_id", sa.Integer),
)
closures = sa.table("consent_closures", sa.column("consent_id", sa.Integer))
links = sa.table(
    "family_links",
    sa.column("patient_id", sa.Integer),
    sa.column("family_user_id", sa.Integer),
    sa.column("recipient_email", sa.String),
)
users = sa.table("users", sa.column("id", sa.Integer), sa.column("email", sa.String))


def _bind(member_query) -> None:
    op.execute(
        consents.update()
        .where(consents.c.recipient_user_id.is_(None))
        .values(recipient_user_id=member_query.scalar_subquery())
    )


def _sqlite_foreign_keys(on: bool) -> None:
    """SQLite rebuilds consent_records to change it, and dropping the old copy would check
    the closures that point at it row by row: off while rebuilding, as SQLite advises."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


def upgrade():
    _sqlite_foreign_keys(False)
    with op.batch_alter_table("consent_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recipient_user_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_consent_records_recipient_user_id_users"),
            "users",
            ["recipient_user_id"],
            ["id"],
        )
        batch_op.create_index(
            "ix_consent_records_patient_recipient_user",
            ["patient_id", "recipient_user_id"],
            unique=False,
        )
    # 1. Whom each consent reached before: the link that carried its address.
    _bind(
        sa.select(links.c.family_user_id)
        .where(
            links.c.patient_id == consents.c.patient_id,
            sa.func.lower(links.c.recipient_email) == sa.func.lower(consents.c.recipient_email),
        )
        .limit(1)
    )
    # 2. Open consents to the current address of a member already linked to that patient.
    open_only = ~sa.exists().where(closures.c.consent_id == consents.c.id)
    op.execute(
        consents.update()
        .where(consents.c.recipient_user_id.is_(None), open_only)
        .values(
            recipient_user_id=sa.select(links.c.family_user_id)
            .join(users, users.c.id == links.c.family_user_id)
            .where(
                links.c.patient_id == consents.c.patient_id,
                sa.func.lower(users.c.email) == sa.func.lower(consents.c.recipient_email),
            )
            .limit(1)
            .scalar_subquery()
        )
    )
    with op.batch_alter_table("family_links", schema=None) as batch_op:
        batch_op.drop_column("recipient_email")
    _sqlite_foreign_keys(True)


def downgrade():
    _sqlite_foreign_keys(False)
    with op.batch_alter_table("family_links", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("recipient_email", sa.String(length=254), nullable=False, server_default="")
        )
    op.execute(
        links.update().values(
            recipient_email=sa.select(sa.func.lower(users.c.email))
            .where(users.c.id == links.c.family_user_id)
            .scalar_subquery()
        )
    )
    with op.batch_alter_table("family_links", schema=None) as batch_op:
        batch_op.alter_column("recipient_email", server_default=None)
    with op.batch_alter_table("consent_records", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_records_patient_recipient_user")
        batch_op.drop_constraint(
            batch_op.f("fk_consent_records_recipient_user_id_users"), type_="foreignkey"
        )
        batch_op.drop_column("recipient_user_id")
    _sqlite_foreign_keys(True)
