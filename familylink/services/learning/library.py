"""The library: published modules by topic, and searching them. Readable by anyone signed in."""

from __future__ import annotations

from sqlalchemy import bindparam, func, or_, select

from familylink.extensions import db
from familylink.models import LearningModule, ModuleTranslation
from familylink.services.errors import NotFound

# ---------------------------------------------------------------------------------------------
# Library


# Every module page asks it: built once, the slug a parameter.
_PUBLISHED_BY_SLUG = select(LearningModule).where(
    LearningModule.slug == bindparam("slug"), LearningModule.published
)


def published_module(slug: str) -> LearningModule:
    module = db.session.scalar(_PUBLISHED_BY_SLUG, {"slug": slug})
    if module is None:
        raise NotFound()
    return module


def in_language(module: LearningModule, language: str) -> LearningModule | ModuleTranslation:
    """The text of `module` to show in `language` (such as "es"): its translation when one
    was written from the module's English file as it is now, else the module itself.

    Both have what a module page shows (slug, title, summary, topic, reading_minutes,
    key_points, reflection, exercise, sources, body_html). English asks nothing more.
    """
    return in_language_all([module], language)[module.id]


def in_language_all(
    modules: list[LearningModule], language: str
) -> dict[int, LearningModule | ModuleTranslation]:
    """`in_language` for many modules at once (one query), by module id."""
    shown: dict[int, LearningModule | ModuleTranslation] = {m.id: m for m in modules}
    if language == "en" or not modules:
        return shown
    translations = db.session.scalars(
        select(ModuleTranslation).where(
            ModuleTranslation.module_id.in_(shown), ModuleTranslation.language == language
        )
    )
    for translation in translations:
        # A translation of an older English text gives way to the English text.
        if translation.source_sha256 == shown[translation.module_id].file_hash:
            shown[translation.module_id] = translation
    return shown


def library(
    query: str = "", language: str = "en"
) -> dict[str, list[LearningModule | ModuleTranslation]]:
    """Published modules grouped by topic, in reading order, each in `language` when it has
    a text in it; `query` searches titles and summaries, English and `language`'s
    (case-insensitive, taken literally)."""
    stmt = select(LearningModule).where(LearningModule.published)
    query = (query or "").strip()
    if query:
        needle = query.lower()
        translated = select(ModuleTranslation.module_id).where(
            ModuleTranslation.language == language,
            _matches(ModuleTranslation.title, ModuleTranslation.summary, needle),
        )
        stmt = stmt.where(
            or_(
                _matches(LearningModule.title, LearningModule.summary, needle),
                LearningModule.id.in_(translated),
            )
        )
    modules = db.session.scalars(stmt.order_by(LearningModule.order, LearningModule.id)).all()
    shown = in_language_all(modules, language)
    grouped: dict[str, list[LearningModule | ModuleTranslation]] = {}
    for module in modules:
        grouped.setdefault(shown[module.id].topic, []).append(shown[module.id])
    return grouped


def _matches(title, summary, needle: str):
    return or_(
        func.lower(title).contains(needle, autoescape=True),
        func.lower(summary).contains(needle, autoescape=True),
    )
