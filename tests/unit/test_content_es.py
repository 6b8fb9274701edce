"""Every English module has a Spanish one, written from the English file as it is now.

The Spanish files live in familylink/content/es/ under the English file's name. Each names,
in `source_sha256`, the hash of the English file it was written from: when the English text
changes, this test fails until someone reads the Spanish text again and records the new
hash. The Spanish text is checked for plain language with the Szigriszt-Pazos (INFLESZ) and
Fernández-Huerta scores (Pyphen's Spanish hyphenation counts the syllables; no download).
"""

import re

import pytest
import textstat

from familylink.services.errors import ValidationError
from familylink.services.learning import (
    CONTENT_DIR,
    content_files,
    parse_module_file,
    parse_translation_file,
    reference_problems,
)
from tests.unit.test_content import plain_text

ENGLISH = content_files()
SPANISH_DIR = CONTENT_DIR / "es"


def spanish_of(path):
    return parse_translation_file(SPANISH_DIR / path.name)


@pytest.fixture(scope="module", autouse=True)
def spanish_textstat():
    textstat.set_lang("es")
    yield
    textstat.set_lang("en_US")


def plain_enough(text: str) -> bool:
    """INFLESZ 65 or more ("bastante fácil"), or Fernández-Huerta 70 or more ("fácil")."""
    return textstat.szigriszt_pazos(text) >= 65 or textstat.fernandez_huerta(text) >= 70


@pytest.mark.parametrize("path", ENGLISH, ids=lambda p: p.stem)
def test_every_english_module_has_a_spanish_one(path):
    assert (SPANISH_DIR / path.name).is_file()


def test_every_spanish_module_has_an_english_one():
    english = {path.name for path in ENGLISH}
    assert {path.name for path in content_files(SPANISH_DIR)} <= english


@pytest.mark.parametrize("path", ENGLISH, ids=lambda p: p.stem)
def test_the_spanish_text_was_written_from_the_english_file_as_it_is_now(path):
    """Changed the English text? Revisit the Spanish one, then record the new hash."""
    assert spanish_of(path).source_sha256 == parse_module_file(path).file_hash


@pytest.mark.parametrize("path", ENGLISH, ids=lambda p: p.stem)
def test_the_spanish_module_is_the_same_module(path):
    english, spanish = parse_module_file(path), spanish_of(path)
    assert (spanish.slug, spanish.order) == (english.slug, english.order)


@pytest.mark.parametrize("path", ENGLISH, ids=lambda p: p.stem)
def test_the_spanish_module_has_as_many_key_points(path):
    assert len(spanish_of(path).key_points) == len(parse_module_file(path).key_points)


@pytest.mark.parametrize("path", ENGLISH, ids=lambda p: p.stem)
def test_the_spanish_module_cites_the_same_sources(path):
    assert spanish_of(path).sources == parse_module_file(path).sources


@pytest.mark.parametrize("path", ENGLISH, ids=lambda p: p.stem)
def test_every_spanish_fact_is_tied_to_a_dated_source(path):
    assert reference_problems(spanish_of(path)) == []


@pytest.mark.parametrize("path", ENGLISH, ids=lambda p: p.stem)
def test_every_spanish_percentage_carries_a_reference(path):
    """A sentence with a percentage names its source in the same sentence, as in English."""
    body = spanish_of(path).body_markdown
    for sentence in re.split(r"(?<=[.!?])(?<!EE\.)(?<!EE\. UU\.)\s+|\n", body):
        if "%" in sentence:
            assert re.search(r"\[\d{1,2}\]", sentence), sentence


@pytest.mark.parametrize("path", ENGLISH, ids=lambda p: p.stem)
def test_the_spanish_reflection_is_a_question(path):
    reflection = spanish_of(path).reflection.strip()
    assert "¿" in reflection and reflection.endswith("?")


@pytest.mark.parametrize("path", ENGLISH, ids=lambda p: p.stem)
def test_the_spanish_body_is_plain_spanish(path):
    text = plain_text(spanish_of(path).body_markdown)
    assert plain_enough(text), (
        f"INFLESZ {textstat.szigriszt_pazos(text):.1f}, "
        f"Fernández-Huerta {textstat.fernandez_huerta(text):.1f}"
    )


def test_the_readability_check_can_fail():
    hard = (
        "La heterogeneidad metodológica considerable de las investigaciones epidemiológicas "
        "contemporáneas fundamenta intervenciones interdisciplinarias comprehensivas que "
        "incorporan componentes psicoeducativos dirigidos a familiares interdependientes."
    )
    assert not plain_enough(hard)


def test_the_spanish_crisis_module_gives_the_spanish_crisis_options():
    body = spanish_of(CONTENT_DIR / "10-safety-and-crisis.md").body_markdown
    assert re.search(r"\b(marca|oprime) el 2\b", body)  # 988, then 2 for Spanish
    assert "AYUDA" in body and "988" in body  # text AYUDA to 988
    assert "1-800-662-4357" in body  # SAMHSA's helpline answers in Spanish too
    assert "911" in body


def test_a_translation_needs_the_hash_of_its_english_file(tmp_path):
    spanish = (SPANISH_DIR / ENGLISH[0].name).read_text(encoding="utf-8")
    broken = tmp_path / ENGLISH[0].name
    broken.write_text(re.sub(r"source_sha256: .*\n", "", spanish), encoding="utf-8")
    with pytest.raises(ValidationError, match="source_sha256"):
        parse_translation_file(broken)
