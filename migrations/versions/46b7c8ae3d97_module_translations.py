"""module texts in other languages (Spanish first), beside the English ones

Revision ID: 46b7c8ae3d97
Revises: fef9ea2229b3
Create Date: 2026-11-30 08:00:00.000000

module_translations keeps one text per module and language, loaded from
familylink/content/<language>/ by the same `flask learn load`; source_sha256 is the hash of
the English file it was written from, so a page shows it only while the module's English
text is still that file. Nothing exists to migrate: the table starts empty.
"""

import sqlalchemy as sa
from alembic import op

import familylink.models.types

revision = "46b7c8ae3d97"
down_revision = "fef9ea2229b3"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "module_translations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("module_id", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("topic", sa.String(length=80), nullable=False),
        sa.Column("reading_minutes", sa.Integer(), nullable=False),
        sa.Column("key_points", sa.JSON(), nullable=False),
        sa.Column("reflection", sa.Text(), nullable=False),
        sa.Column("exercise", sa.Text(), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("body_markdown", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.Column("source_sha256", sa.String(length=64), nullable=False),
        sa.Column("file_hash", sa.String(length=64), nullable=False),
        sa.Column("updated_at", familylink.models.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["module_id"],
            ["learning_modules.id"],
            name=op.f("fk_module_translations_module_id_learning_modules"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_module_translations")),
        sa.UniqueConstraint("module_id", "language", name=op.f("uq_module_translations_module_id")),
    )
    with op.batch_alter_table("module_translations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_module_translations_module_id"), ["module_id"], unique=False
        )


def downgrade():
    with op.batch_alter_table("module_translations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_module_translations_module_id"))
    op.drop_table("module_translations")
