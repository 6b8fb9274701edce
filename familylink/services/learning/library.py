"""The library: published modules by topic, and searching them. Readable by anyone signed in."""

from __future__ import annotations

from sqlalchemy import func, or_, select

from familylink.extensions import db
from familylink.models import LearningModule, ModuleTranslation
from familylink.services.errors import NotFound

# ---------------------------------------------------------------------------------------------
# Library


def published_module(slug: str) -> LearningModule:
    module = db.session.scalar(
        select(LearningModule).where(LearningModule.slug == slug, LearningModule.published)
    )
    if module is None:
        raise NotFound()
    return module


def in_language(module: LearningModule, language: str) -> LearningModule | ModuleTranslation:
    """The text of `module` to show in `language` (such as "es"): its translation when one
    was written from the module's English file as it is now, else the module itself.

    Both have what a module page shows (slug, title, summary, topic, reading_minutes,
    key_points, reflection, exercise, sources, body_html). English asks nothing more.
    """
    if language == "en":
        return module
    translation = db.session.scalar(
        select(ModuleTranslation).where(
            ModuleTranslation.module_id == module.id, ModuleTranslation.language == language
        )
    )
    if translation is None or translation.source_sha256 != module.file_hash:
        return module
    return translation


def library(query: str = "") -> dict[str, list[LearningModule]]:
    """Published modules grouped by topic, in reading order; `query` searches titles and
    summaries (case-insensitive, taken literally)."""
    stmt = select(LearningModule).where(LearningModule.published)
    query = (query or "").strip()
    if query:
        needle = query.lower()
        stmt = stmt.where(
            or_(
                func.lower(LearningModule.title).contains(needle, autoescape=True),
                func.lower(LearningModule.summary).contains(needle, autoescape=True),
            )
        )
    grouped: dict[str, list[LearningModule]] = {}
    for module in db.session.scalars(stmt.order_by(LearningModule.order, LearningModule.id)):
        grouped.setdefault(module.topic, []).append(module)
    return grouped
