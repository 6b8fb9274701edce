"""The library: published modules by topic, and searching them. Readable by anyone signed in."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, bindparam, func, or_, select

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


@dataclass(frozen=True)
class ModulePage:
    """What a module page shows of a published module, in the reader's language: its id and
    slug (the module's own) and its text (see `in_language`)."""

    id: int
    slug: str
    title: str
    summary: str
    topic: str
    reading_minutes: int
    key_points: list
    reflection: str
    exercise: str
    sources: list
    body_html: str


_PAGE_TEXT = (
    "title",
    "summary",
    "topic",
    "reading_minutes",
    "key_points",
    "reflection",
    "exercise",
    "sources",
    "body_html",
)
# Every module page reads it: built once, the slug and language parameters, plain rows of
# the tables' columns (no ORM objects). The text's columns only (never body_markdown, the
# edit form's); the translation in the same statement, joined only while it was written from
# the module's English file as it is now.
_MODULES, _TRANSLATIONS = LearningModule.__table__.c, ModuleTranslation.__table__.c
_PAGE_IN_ENGLISH = select(
    _MODULES.id, _MODULES.slug, *(_MODULES[name] for name in _PAGE_TEXT)
).where(_MODULES.slug == bindparam("slug"), _MODULES.published)
_PAGE_TRANSLATED = _PAGE_IN_ENGLISH.add_columns(
    _TRANSLATIONS.id.label("translated"), *(_TRANSLATIONS[name] for name in _PAGE_TEXT)
).outerjoin(
    ModuleTranslation.__table__,
    and_(
        _TRANSLATIONS.module_id == _MODULES.id,
        _TRANSLATIONS.language == bindparam("language"),
        _TRANSLATIONS.source_sha256 == _MODULES.file_hash,
    ),
)
_TEXT = slice(2, 2 + len(_PAGE_TEXT))
_TRANSLATED_TEXT = slice(3 + len(_PAGE_TEXT), None)


def module_page(slug: str, language: str) -> ModulePage:
    """The published module `slug` as its page shows it in `language` (such as "es"): the
    text `in_language` chooses, in one statement. Raises NotFound."""
    translated = language != "en"
    if translated:
        row = db.session.execute(_PAGE_TRANSLATED, {"slug": slug, "language": language}).first()
    else:
        row = db.session.execute(_PAGE_IN_ENGLISH, {"slug": slug}).first()
    if row is None:
        raise NotFound()
    if translated and row.translated is not None:
        return ModulePage(row.id, row.slug, *row[_TRANSLATED_TEXT])
    return ModulePage(row.id, row.slug, *row[_TEXT])


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
