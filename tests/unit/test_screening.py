"""The one screen for staff-entered text that reaches an email or a calendar file."""

import unicodedata

import pytest
from flask_babel import force_locale
from flask_babel import gettext as _

from familylink.services import screening
from familylink.services.errors import ValidationError
from familylink.services.screening import clinical_words, safe_sender_name, screen
from tests.unit.test_email_privacy import (
    DENIED_STEMS,
    DENIED_STEMS_SPANISH,
    DENIED_WORDS,
    PATIENT_SURNAME,
)

CYRILLIC_E = "\u0435"
ZWJ = "\u200d"


@pytest.mark.parametrize(
    ("text", "word"),
    [
        # The examples, each of which the sender-name check let through.
        ("Riverside Mental Health", "mental"),
        ("Behavioral Health", "behavioral"),
        ("Behavioural-Health Partners", "behavioural"),
        ("Dual Diagnosis Clinic", "diagnosis"),
        ("Drug Court Services", "drug"),
        (f"R{CYRILLIC_E}covery", "recovery"),
        ("Lakeside Addiction Recovery Center", "addiction"),
        # Lookalikes: fullwidth, mathematical bold, circled, all-Cyrillic, Greek omicron.
        ("Ｒｅｃｏｖｅｒｙ Families", "recovery"),
        ("𝐑𝐞𝐡𝐚𝐛 Families", "rehab"),
        ("Ⓓⓔⓣⓞⓧ", "detox"),
        ("\u0422\u0415RA\u0420IA Familiar", "terapia"),
        ("Rec\u03bfvery", "recovery"),
        # A combining accent does not split a word.
        ("Reha\u0301b", "reha\u0301b"),
        # Spanish, with and without accents, any case.
        ("Centro de Adicción", "adiccion"),
        ("Centro de Adiccion", "adiccion"),
        ("Programa de Recuperación", "recuperacion"),
        ("Programa de recuperacion", "recuperacion"),
        ("REHABILITACIÓN Familiar", "rehabilitacion"),
        ("Salud Mental Familiar", "mental"),
        ("Tratamiento Familiar", "tratamiento"),
        ("Sesiones de terapia", "terapia"),
        ("Sustancias y familia", "sustancias"),
        ("Drogas", "drogas"),
        ("Desintoxicación", "desintoxicacion"),
        ("Centro Psiquiátrico", "psiquiatrico"),
        # Short words only whole, inside a video link too.
        ("AA family night", "aa"),
        ("Lakeside IOP", "iop"),
        ("https://video.example.org/recoverycenter/4821", "recoverycenter"),
        # The kind of program, a diagnosis, what is treated, a counsellor's credential.
        ("Intensive Outpatient Family Sessions", "outpatient"),
        ("Partial Hospitalization Program", "hospitalization"),
        ("Chemical Dependency Services", "dependency"),
        ("Programa Ambulatorio Intensivo", "ambulatorio"),
        ("Depression and Anxiety Family Group", "depression"),
        ("Depression and Anxiety Family Group", "anxiety"),
        ("Bipolar Family Group", "bipolar"),
        ("PTSD family night", "ptsd"),
        ("Eating Disorders Families", "disorders"),
        ("Depresión y Ansiedad", "depresion"),
        ("Trastornos de la Conducta Alimentaria", "trastornos"),
        ("Schizophrenia Family Support", "schizophrenia"),
        ("Cannabis Families", "cannabis"),
        ("Marihuana y familia", "marihuana"),
        ("Meth Family Night", "meth"),
        ("Gambling Families", "gambling"),
        ("Ludopatía", "ludopatia"),
        ("Al-Anon room", "al-anon"),
        ("Grace Lee, CADC", "cadc"),
        ("Grace Lee, LMHC", "lmhc"),
        ("Grace Lee,LPC", "lpc"),
        ("Sam Hill, LCDC-II", "lcdc"),
    ],
)
def test_clinical_words_are_found_however_they_are_written(text, word):
    assert word.replace("\u0301", "") in clinical_words(text)


@pytest.mark.parametrize(
    "text",
    [
        "Grace Lee",
        "Main Street",
        "Drugstore corner, 4 Elm Street",
        "Sudbury Family Sessions",
        "Period Family Center",
        "Santa Ana",
        "Anaheim",
        "Séances en famille",
        "Family Sessions",
        "Room 2",
        "https://video.example.org/j/4821",
        "Nadia Álvarez",
        "Adicional room",
        # Names and places beside the words above.
        "Dr. Sarah Gamble",
        "Mat Jones",
        "Mac Allen",
        "Methodist Hall",
        "Independence Hall",
        "St. Mary's Hospital, 5 Elm Street",
        "Dependable Way",
        # A credential only counts after a name's comma: random video codes and ids pass.
        "https://meet.google.com/abc-lpcc-xyz",
        "https://meet.google.com/ocd-xkqp-abc",
        "https://teams.example.org/l/meetup-join/19%3a0f3e-cadc-4a1b",
        "Grace Lee, PhD",
    ],
)
def test_ordinary_names_places_and_links_pass(app_ctx, text):
    assert clinical_words(text) == ()
    assert screen(text, field="name") == text


@pytest.mark.parametrize(
    "word",
    [w for w in DENIED_STEMS if w != PATIENT_SURNAME] + DENIED_STEMS_SPANISH + DENIED_WORDS,
)
def test_every_word_the_email_privacy_check_denies_is_screened(word):
    """The email privacy test keeps its own list; the screen must refuse every word of it."""
    assert clinical_words(f"Lakeside {word.title()} Families")


@pytest.mark.parametrize(
    "text",
    [
        "Lakeside\r\nBcc: everyone@example.org",
        "Lakeside\nSessions",
        "Lakeside\tSessions",
        "Lakeside\x7fSessions",
        "Lakeside\x85Sessions",
        f"Re{ZWJ}covery",  # a zero-width joiner inside a word
        "Lake\u200bside",  # zero-width space
        "Lakeside \u202eslaimilaF",  # a right-to-left override
        "Lakeside\u2028Sessions",  # line separator
        "Lakeside\u00adSessions",  # soft hyphen
    ],
)
def test_control_and_invisible_characters_are_refused(app_ctx, text):
    with pytest.raises(ValidationError) as caught:
        screen(text, field="sender_name")
    assert caught.value.field == "sender_name"
    assert "no line breaks, tabs or invisible characters" in caught.value.message


def test_a_zero_width_joiner_does_not_hide_the_word_it_splits():
    assert clinical_words(f"Re{ZWJ}co{ZWJ}very") == ("recovery",)


def test_the_message_names_the_word_as_it_was_typed(app_ctx):
    with pytest.raises(ValidationError) as caught:
        screen(f"Lakeside R{CYRILLIC_E}covery", field="sender_name")
    assert f'leave out "R{CYRILLIC_E}covery"' in caught.value.message


def test_a_location_passes_only_with_every_word_it_holds_confirmed(app_ctx):
    place = "12 Recovery Drive, Rehab Wing"
    with pytest.raises(screening.ScreenedWords) as caught:
        screen(place, field="location", confirmed=())
    assert caught.value.words == ("recovery", "rehab")
    assert "Use it anyway" in caught.value.message
    with pytest.raises(screening.ScreenedWords) as caught:
        screen(place, field="location", confirmed=("recovery",))
    assert caught.value.words == ("rehab",)
    assert screen(place, field="location", confirmed=("recovery", "rehab")) == place


def test_a_confirmation_never_lets_control_characters_through(app_ctx):
    with pytest.raises(ValidationError):
        screen("Recovery\r\nDrive", field="location", confirmed=("recovery",))


@pytest.mark.parametrize(
    ("stored", "sent"),
    [
        ("Lakeside Sessions", "Lakeside Sessions"),
        ("Lakeside\r\nSessions", "Family Sessions"),
        ("Lakeside Recovery", "Family Sessions"),
        ("", "Family Sessions"),
    ],
)
def test_a_stored_sender_name_that_would_break_or_reveal_gives_way(app_ctx, stored, sent):
    assert safe_sender_name(stored) == sent
    assert safe_sender_name(stored) == sent  # screened once a process: the same answer again
    with force_locale("es"):  # and the neutral name, when it gives way, in the reader's words
        assert safe_sender_name(stored) == (stored if stored == sent else _("Family Sessions"))


@pytest.mark.parametrize(
    "word",
    [
        "adicción",
        "rehabilitación",
        "recuperación",
        "tratamiento",
        "salud mental",
        "terapia",
        "sustancias",
        # The Spanish forms of the English deny-list (tests/unit/test_email_privacy.py).
        "adicto",
        "sustancia",
        "desintoxicación",
        "alcohol",
        "opioides",
        "opiáceos",
        "metadona",
        "suboxone",
        "buprenorfina",
        "naloxona",
        "sobredosis",
        "sobrio",
        "sobria",
        "sobriedad",
    ],
)
def test_spanish_clinical_words_in_an_email_are_refused(word):
    """`screen` guards every staff-typed text that reaches an email or a calendar file; a
    Spanish clinical word is refused as an English one is, with or without its accents."""
    for typed in (
        word,
        word.upper(),
        unicodedata.normalize("NFKD", word).encode("ascii", "ignore").decode(),
    ):
        with pytest.raises(screening.ScreenedWords):
            screen(f"Sesión familiar: {typed} los martes", field="name")


def test_the_lookalike_table_holds_the_confusables_packages_answers_as_the_script_writes_them():
    from pathlib import Path

    from bench import lookalikes as script
    from familylink.services import lookalikes

    assert script.derive() == lookalikes.LATIN
    assert Path(lookalikes.__file__).read_text(encoding="utf-8") == script.source(script.derive())


def test_the_screen_folds_every_character_the_confusables_data_lists_as_the_package_would(
    monkeypatch,
):
    from confusable_homoglyphs import confusables

    from bench.lookalikes import latin_lookalike

    characters = [ch for ch in confusables.confusables_data if len(ch) == 1]
    with_the_table = [screening._fold_char.__wrapped__(ch) for ch in characters]

    class AskThePackage:
        @staticmethod
        def get(ch, default):
            return latin_lookalike(ch) or default

    monkeypatch.setattr(screening, "LATIN", AskThePackage)
    assert [screening._fold_char.__wrapped__(ch) for ch in characters] == with_the_table


@pytest.mark.parametrize(
    ("stored", "printed"),
    [
        ("Dr. Grace Lee", "Dr. Grace Lee"),
        ("Grace Lee, LMHC", "Grace Lee"),
        ("Grace Lee, MA, LCSW", "Grace Lee, MA"),
        ("Sam Hill, LCDC-II", "Sam Hill"),
        ("Ana Ruiz, CADC, PhD", "Ana Ruiz, PhD"),
    ],
)
def test_a_staff_name_saved_before_a_word_was_screened_is_printed_without_it(
    app_ctx, stored, printed
):
    assert screening.safe_staff_name(stored) == printed
