"""Module texts: rendering and sanitizing, content files, loading them, admin edits and versions.

Texts are Markdown rendered with markdown-it-py and cleaned by nh3 against an allowlist when
they are saved; pages only ever show that cleaned HTML. Every change to a text, from a file or
an admin, is kept as a new version.

Texts in other languages (`TRANSLATIONS`) live in content/<language>/ under the English file's
name, each naming the hash of the English file it was written from (`source_sha256`); the same
load keeps them as `ModuleTranslation` rows beside their module.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path

from flask_babel import gettext as _
from sqlalchemy import func, select

from familylink.extensions import db
from familylink.models import (
    LearningModule,
    ModuleTranslation,
    ModuleVersion,
    User,
    VersionSource,
)
from familylink.services import audit
from familylink.services.errors import NotFound, ValidationError

CONTENT_DIR = Path(__file__).resolve().parents[2] / "content"
#: The languages a module may also be written in: content/<language>/ beside the English files.
TRANSLATIONS = ("es",)

# ---------------------------------------------------------------------------------------------
# Rendering and sanitizing

ALLOWED_TAGS = {
    "p", "h2", "h3", "h4", "ul", "ol", "li", "strong", "em", "a", "blockquote",
    "code", "pre", "hr", "br", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}
ALLOWED_URL_SCHEMES = {"http", "https", "mailto", "tel"}


@cache
def _markdown():
    # Imported on the first text rendered: texts are rendered when saved (`flask learn load`,
    # an admin's edit), so a worker showing pages never keeps markdown-it (issue 19).
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": True, "linkify": False}).enable("table")


# A numbered reference to the module's sources list: "[3]", not a Markdown link "[3](…)".
_REFERENCE = re.compile(r"\[(\d{1,2})\](?!\()")


def link_references(html: str) -> str:
    """Each "[n]" in text becomes a link to entry n of the sources list (id="source-n")."""
    parts = re.split(r"(<[^>]*>)", html)
    return "".join(
        part if part.startswith("<") else _REFERENCE.sub(r'<a href="#source-\1">[\1]</a>', part)
        for part in parts
    )


def render_markdown(text: str) -> str:
    """Markdown to HTML that is safe to put on a page (allowlisted tags, attributes, schemes).

    Raw HTML in the Markdown is parsed, then nh3 drops every tag, attribute and URL scheme
    not on the allowlist: no scripts, no event handlers, no javascript: links. Numbered
    references become links to the sources list (`link_references`).
    """
    import nh3  # with markdown-it, about 2.5 MB a process: only where texts are saved

    html = link_references(_markdown().render(text or ""))
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
    )


# ---------------------------------------------------------------------------------------------
# Content files

REQUIRED_FIELDS = (
    "slug", "title", "summary", "topic", "order", "reading_minutes",
    "key_points", "reflection", "exercise", "sources",
)  # fmt: skip
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n(.*)\Z", re.DOTALL)


@dataclass
class ModuleText:
    """Every part of a module's text, as a content file or an admin edit gives it."""

    slug: str
    title: str
    summary: str
    topic: str
    order: int
    reading_minutes: int
    key_points: list[str]
    reflection: str
    exercise: str
    sources: list[str]
    body_markdown: str
    published: bool = True
    file_hash: str | None = field(default=None, compare=False)
    # A translation only: the hash of the English file it was written from.
    source_sha256: str | None = field(default=None, compare=False)


def parse_module_file(path: Path) -> ModuleText:
    """Read one content file (YAML front matter, then Markdown); raises ValidationError."""
    import yaml  # content files are read by `flask learn load` only, never by a served worker

    raw = path.read_text(encoding="utf-8")
    match = _FRONT_MATTER.match(raw)
    if not match:
        raise ValidationError(f"{path.name}: no front matter between '---' lines")
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as error:
        raise ValidationError(f"{path.name}: front matter is not valid YAML ({error})")
    missing = [name for name in REQUIRED_FIELDS if meta.get(name) in (None, "", [])]
    if missing:
        raise ValidationError(f"{path.name}: missing {', '.join(missing)}")
    text = ModuleText(
        slug=str(meta["slug"]),
        title=str(meta["title"]),
        summary=str(meta["summary"]),
        topic=str(meta["topic"]),
        order=int(meta["order"]),
        reading_minutes=int(meta["reading_minutes"]),
        key_points=[str(p) for p in meta["key_points"]],
        reflection=str(meta["reflection"]),
        exercise=str(meta["exercise"]),
        sources=[str(s) for s in meta["sources"]],
        body_markdown=match.group(2).strip() + "\n",
        published=bool(meta.get("published", True)),
        file_hash=hashlib.sha256(raw.encode("utf-8")).hexdigest(),
        source_sha256=str(meta["source_sha256"]) if meta.get("source_sha256") else None,
    )
    check_module_text(text)
    return text


def content_files(directory: Path = CONTENT_DIR) -> list[Path]:
    return sorted(directory.glob("*.md"))


def parse_translation_file(path: Path) -> ModuleText:
    """A content file in another language: a module's file plus `source_sha256`, the hash of
    the English file it was written from. Raises ValidationError."""
    text = parse_module_file(path)
    if not re.fullmatch(r"[0-9a-f]{64}", text.source_sha256 or ""):
        raise ValidationError(
            f"{path.name}: source_sha256 must be the sha256 of the English file it was written from"
        )
    return text


def check_module_text(text: ModuleText) -> None:
    """The rules every module text follows, whoever wrote it; raises ValidationError(field)."""
    if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", text.slug or ""):
        raise ValidationError(_("Use lower-case letters, digits and hyphens."), field="slug")
    for name, limit in (("title", 200), ("summary", 500), ("topic", 80)):
        value = (getattr(text, name) or "").strip()
        if not value:
            raise ValidationError(_("This can't be empty."), field=name)
        if len(value) > limit:
            raise ValidationError(_("Use at most %(count)s characters.", count=limit), field=name)
    if not 3 <= len(text.key_points) <= 5 or any(not p.strip() for p in text.key_points):
        raise ValidationError(_("Give 3 to 5 key points, one per line."), field="key_points")
    if not text.sources or any(not s.strip() for s in text.sources):
        raise ValidationError(_("Give at least one source, one per line."), field="sources")
    for name in ("reflection", "exercise", "body_markdown"):
        if not (getattr(text, name) or "").strip():
            raise ValidationError(_("This can't be empty."), field=name)
    if not 1 <= text.reading_minutes <= 60:
        raise ValidationError(
            _("Give a reading time between 1 and 60 minutes."), field="reading_minutes"
        )


# A source names its year ("2020") or says the page gives none ("n.d.").
_SOURCE_YEAR = re.compile(r"\b(19|20)\d\d\b|\bn\.d\.")


def reference_problems(text: ModuleText) -> list[str]:
    """What breaks the tie between a module's facts and its sources: a reference "[n]" with
    no entry n, an entry never referenced, or an entry without a year. Empty when all is well.
    """
    cited = {int(n) for n in _REFERENCE.findall(text.body_markdown)}
    count = len(text.sources)
    problems = [
        f"[{n}] has no entry in the sources list" for n in sorted(cited) if not 1 <= n <= count
    ]
    problems += [f"source {n} is never referenced" for n in range(1, count + 1) if n not in cited]
    problems += [
        f"source {n} has no year"
        for n, source in enumerate(text.sources, 1)
        if not _SOURCE_YEAR.search(source)
    ]
    return problems


def source_links(sources: list[str]) -> list[tuple[str, str | None]]:
    """Each entry of a sources list as (its text, its web address or None): an entry ends
    with its https:// address when it has one."""
    links = []
    for source in sources:
        text, found, address = source.rpartition(" https://")
        links.append((text, "https://" + address) if found else (source, None))
    return links


_TEXT_FIELDS = (
    "title", "summary", "topic", "order", "reading_minutes", "key_points",
    "reflection", "exercise", "sources", "body_markdown", "published",
)  # fmt: skip


def _apply(module: LearningModule, text: ModuleText, *, source: str, actor, now) -> ModuleVersion:
    """Put `text` on the module and keep it as a new version."""
    for name in _TEXT_FIELDS:
        setattr(module, name, getattr(text, name))
    module.body_html = render_markdown(text.body_markdown)
    module.updated_at = now
    db.session.flush()  # a new module needs its id
    number = (
        db.session.scalar(
            select(func.max(ModuleVersion.number)).where(ModuleVersion.module_id == module.id)
        )
        or 0
    ) + 1
    version = ModuleVersion(
        module_id=module.id,
        number=number,
        source=source,
        created_at=now,
        created_by_id=actor.id if actor is not None else None,
        **{name: getattr(text, name) for name in _TEXT_FIELDS},
    )
    db.session.add(version)
    db.session.flush()
    return version


@dataclass
class LoadReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    # Translations, as "slug (language)".
    translated: list[str] = field(default_factory=list)
    translations_unchanged: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        report = (
            f"{len(self.created)} new, {len(self.updated)} updated, {len(self.unchanged)} unchanged"
        )
        if self.translated or self.translations_unchanged:
            report += (
                f"; translations: {len(self.translated)} loaded, "
                f"{len(self.translations_unchanged)} unchanged"
            )
        return report


def load_modules(*, now: datetime, directory: Path = CONTENT_DIR) -> LoadReport:
    """Load every content file; a new or changed file becomes a new version, others are skipped.

    Raises ValidationError (naming the file) before changing anything when a file is broken,
    or when a translation has no English file. An admin's in-app edit stays in place until
    the file itself changes. Translations (content/<language>/) are loaded after, the same way.
    """
    texts = [parse_module_file(path) for path in content_files(directory)]
    translations = _translation_files(directory, {text.slug for text in texts})
    report = LoadReport()
    for text in texts:
        module = db.session.scalar(select(LearningModule).where(LearningModule.slug == text.slug))
        if module is not None and module.file_hash == text.file_hash:
            report.unchanged.append(text.slug)
            continue
        if module is None:
            module = LearningModule(slug=text.slug)
            db.session.add(module)
            report.created.append(text.slug)
        else:
            report.updated.append(text.slug)
        module.file_hash = text.file_hash
        _apply(module, text, source=VersionSource.FILE, actor=None, now=now)
    for language, text in translations:
        _load_translation(language, text, report, now=now)
    return report


def _translation_files(directory: Path, slugs: set[str]) -> list[tuple[str, ModuleText]]:
    """Every translation file, parsed; ValidationError for one whose module has no file."""
    found = []
    for language in TRANSLATIONS:
        for path in content_files(directory / language):
            text = parse_translation_file(path)
            if text.slug not in slugs:
                raise ValidationError(
                    f"{language}/{path.name}: no English file has the slug {text.slug!r}"
                )
            found.append((language, text))
    return found


_TRANSLATED_FIELDS = (
    "title", "summary", "topic", "reading_minutes", "key_points", "reflection", "exercise",
    "sources", "body_markdown", "source_sha256", "file_hash",
)  # fmt: skip


def _load_translation(language: str, text: ModuleText, report: LoadReport, *, now) -> None:
    module = db.session.scalar(select(LearningModule).where(LearningModule.slug == text.slug))
    row = db.session.scalar(
        select(ModuleTranslation).where(
            ModuleTranslation.module_id == module.id, ModuleTranslation.language == language
        )
    )
    name = f"{text.slug} ({language})"
    if row is not None and row.file_hash == text.file_hash:
        report.translations_unchanged.append(name)
        return
    if row is None:
        row = ModuleTranslation(module_id=module.id, language=language)
        db.session.add(row)
    for attribute in _TRANSLATED_FIELDS:
        setattr(row, attribute, getattr(text, attribute))
    row.body_html = render_markdown(text.body_markdown)
    row.updated_at = now
    report.translated.append(name)
    db.session.flush()


# ---------------------------------------------------------------------------------------------
# Admin editing


def module_by_id(module_id: int) -> LearningModule:
    module = db.session.get(LearningModule, module_id)
    if module is None:
        raise NotFound()
    return module


def all_modules() -> list[LearningModule]:
    return list(db.session.scalars(select(LearningModule).order_by(LearningModule.order)))


def save_module(module: LearningModule, text: ModuleText, *, actor: User, now: datetime):
    """An admin's edit: checked, sanitized, kept as a new version. Raises ValidationError."""
    text.slug = module.slug
    check_module_text(text)
    version = _apply(module, text, source=VersionSource.EDIT, actor=actor, now=now)
    audit.record(
        "module.edited", actor=actor, obj=module, detail={"version": version.number}, now=now
    )
    return version


def restore_version(module: LearningModule, version_id: int, *, actor: User, now: datetime):
    """Bring back an earlier text as a new version; NotFound for another module's version."""
    version = db.session.get(ModuleVersion, version_id)
    if version is None or version.module_id != module.id:
        raise NotFound()
    text = ModuleText(slug=module.slug, **{name: getattr(version, name) for name in _TEXT_FIELDS})
    new = _apply(module, text, source=VersionSource.RESTORE, actor=actor, now=now)
    audit.record(
        "module.restored",
        actor=actor,
        obj=module,
        detail={"restored": version.number, "version": new.number},
        now=now,
    )
    return new
