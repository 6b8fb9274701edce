"""Spanish module texts: loaded beside the English ones by the same load, shown for Spanish."""

import shutil
from dataclasses import fields

import pytest
from sqlalchemy import func, select

from familylink.extensions import db
from familylink.models import LearningModule, ModuleTranslation
from familylink.services import learning
from familylink.services.errors import NotFound, ValidationError
from familylink.services.learning import CONTENT_DIR, parse_translation_file

CRISIS = "10-safety-and-crisis.md"


@pytest.fixture
def modules(app_ctx, now):
    learning.load_modules(now=now)
    return {module.slug: module for module in learning.all_modules()}


def copy_module(name, directory):
    """One English content file and its Spanish text, copied into `directory`."""
    (directory / "es").mkdir(exist_ok=True)
    shutil.copy(CONTENT_DIR / name, directory / name)
    shutil.copy(CONTENT_DIR / "es" / name, directory / "es" / name)


def test_load_keeps_a_spanish_text_beside_each_module(modules):
    rows = db.session.scalars(select(ModuleTranslation)).all()
    assert sorted((row.module.slug, row.language) for row in rows) == sorted(
        (slug, "es") for slug in modules
    )


def test_the_spanish_text_is_kept_as_sanitized_html(modules):
    shown = learning.in_language(modules["safety-and-crisis"], "es")
    assert "<h2>" in shown.body_html and "AYUDA" in shown.body_html


def test_loading_again_leaves_the_spanish_texts_alone(modules, now):
    report = learning.load_modules(now=now)
    assert report.translated == []
    assert len(report.translations_unchanged) == len(modules)


def test_a_spanish_locale_gets_the_spanish_text(modules):
    spanish = parse_translation_file(CONTENT_DIR / "es" / CRISIS)
    shown = learning.in_language(modules["safety-and-crisis"], "es")
    assert (shown.slug, shown.title, shown.key_points) == (
        "safety-and-crisis",
        spanish.title,
        spanish.key_points,
    )


def test_english_gets_the_module_itself(modules):
    assert learning.in_language(modules["boundaries"], "en") is modules["boundaries"]


def test_a_language_with_no_text_gets_english(modules):
    assert learning.in_language(modules["boundaries"], "fr") is modules["boundaries"]


@pytest.fixture
def older_english(app_ctx, tmp_path, now):
    """A module whose English file changed after its Spanish text was written."""
    copy_module(CRISIS, tmp_path)
    learning.load_modules(now=now, directory=tmp_path)
    english = tmp_path / CRISIS
    english.write_text(english.read_text(encoding="utf-8") + "\nA new line.\n", encoding="utf-8")
    learning.load_modules(now=now, directory=tmp_path)
    return db.session.scalar(select(LearningModule))


def test_a_spanish_text_of_an_older_english_text_gives_way_to_english(older_english):
    """The English file changed and its Spanish text was not revisited: show English."""
    assert learning.in_language(older_english, "es") is older_english


# The module page's text (`module_page`): one statement for the module and its text in the
# reader's language, following the same rules as `in_language`.


def _text(shown) -> tuple:
    """What a module page shows of `shown` (a module, translation or page) but its id."""
    return tuple(getattr(shown, f.name) for f in fields(learning.ModulePage) if f.name != "id")


@pytest.mark.parametrize("language", ["en", "es", "fr"])
def test_the_module_page_shows_what_in_language_shows(modules, language):
    module = modules["safety-and-crisis"]
    page = learning.module_page("safety-and-crisis", language)
    assert (page.id, page.slug) == (module.id, module.slug)
    assert _text(page) == _text(learning.in_language(module, language))


def test_the_module_page_of_an_older_english_text_is_english(older_english):
    page = learning.module_page(older_english.slug, "es")
    assert _text(page) == _text(older_english)


@pytest.mark.parametrize("language", ["en", "es"])
def test_an_unpublished_or_unknown_module_has_no_page(modules, language):
    modules["boundaries"].published = False
    db.session.flush()
    for slug in ("boundaries", "no-such-module"):
        with pytest.raises(NotFound):
            learning.module_page(slug, language)


def test_a_spanish_file_for_no_english_module_is_refused_before_anything_changes(
    app_ctx, tmp_path, now
):
    copy_module(CRISIS, tmp_path)
    (tmp_path / CRISIS).unlink()
    with pytest.raises(ValidationError, match=CRISIS):
        learning.load_modules(now=now, directory=tmp_path)
    assert db.session.scalar(select(func.count(ModuleTranslation.id))) == 0


def test_a_changed_spanish_file_replaces_the_spanish_text(app_ctx, tmp_path, now):
    copy_module(CRISIS, tmp_path)
    learning.load_modules(now=now, directory=tmp_path)
    spanish = tmp_path / "es" / CRISIS
    text = spanish.read_text(encoding="utf-8")
    spanish.write_text(text.replace("## ", "## Nuevo: ", 1), encoding="utf-8")
    report = learning.load_modules(now=now, directory=tmp_path)
    row = db.session.scalar(select(ModuleTranslation))
    assert report.translated == ["safety-and-crisis (es)"]
    assert "Nuevo:" in row.body_html
