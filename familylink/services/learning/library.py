"""The library: published modules by topic, and searching them. Readable by anyone signed in."""

from __future__ import annotations

from sqlalchemy import func, or_, select

from familylink.extensions import db
from familylink.models import LearningModule
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
