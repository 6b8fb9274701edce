"""The one screen for text that staff type and that reaches an inbox or a calendar file.

Every such field goes through `screen` before it is saved: the program's sender name, a
session type's name, location and video link, and the names of therapists and admins (42
CFR Part 2: an email or a calendar entry must not tell whoever sees it what kind of care
this is). Two things are refused:

- control characters (line breaks, tabs, zero-width and bidi-override characters, any
  Unicode Cc, Cf, Zl, Zp, Co or Cs): a line break in a header makes every email fail, and an
  invisible character can split a word so that nothing matches it;
- clinical words, in English and Spanish, matched on a folded copy of the text: Unicode
  NFKC (fullwidth and styled letters become plain ones), accents taken off, letters of other
  scripts that look like Latin ones (a Cyrillic "е") replaced by those, per the Unicode
  confusables data of the `confusable_homoglyphs` package (its answers kept in
  `lookalikes.LATIN`, so serving never loads the package), and case folded.

A location is a real address and may be on "Recovery Drive": there the caller passes the
words the admin saw and confirmed, and the confirmation is audited.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from flask_babel import gettext as _

from familylink.services.errors import ValidationError
from familylink.services.lookalikes import LATIN

#: Unicode categories refused anywhere: controls (CR, LF, tab, DEL, C1), format characters
#: (zero-width joiners and spaces, soft hyphen, bidi overrides), line and paragraph
#: separators, private use and lone surrogates.
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Co", "Cs"})

#: Stems matched anywhere in a word, on the folded text: "recover" catches "Recovery",
#: "FamilyRecovery" and "recoverycenter.example.org".
CLINICAL_STEMS = (
    # English
    "addict",
    "substance",
    "recover",
    "rehab",
    "detox",
    "alcohol",
    "opioid",
    "opiate",
    "methadon",
    "suboxon",
    "buprenorph",
    "naloxon",
    "narcotic",
    "fentanyl",
    "heroin",
    "cocain",
    "overdos",
    "treatment",
    "sober",
    "sobriet",
    "psychiatr",
    "psycholog",
    "psychotherap",
    "diagnos",
    # The kind of program, diagnoses and what a program treats
    "outpatient",
    "inpatient",
    "hospitaliz",
    "hospitalis",
    "codependen",
    "depress",
    "anxiet",
    "bipolar",
    "schizo",
    "psychos",
    "psychotic",
    "disorder",
    "anorex",
    "bulimi",
    "suicid",
    "cannabis",
    "marijuan",
    "amphetamin",
    "benzodiazep",
    "nicotin",
    # Spanish (accents are taken off before matching)
    "adiccion",
    "adicto",
    "adicta",
    "drogadic",
    "recuperacion",
    "tratamiento",
    "sustancia",
    "desintox",
    "psiquiatr",
    "psicolog",
    "psicoterap",
    "sobriedad",
    "sobredosis",
    "fentanil",
    "cocaina",
    "heroina",
    "opiace",
    "metadon",
    "buprenorf",
    "ambulatori",
    "depresi",
    "ansiedad",
    "trastorno",
    "esquizo",
    "psicosis",
    "psicotic",
    "ludopat",
    "marihuan",
    "anfetamin",
    "postraumat",
)

#: Words matched only whole, so "Sudbury", "Santa Ana" and "Drugstore" pass ("mental" and
#: "behavioral" are enough to catch "Mental Health" and "Behavioral Health").
CLINICAL_WORDS = (
    "iop",
    "sud",
    "oud",
    "aa",
    "na",
    "drug",
    "drugs",
    "droga",
    "drogas",
    "mental",
    "behavioral",
    "behavioural",
    "conductual",
    "therapy",
    "therapies",
    "terapia",
    "terapias",
    "dependency",
    "dependencies",
    "ptsd",
    "adhd",
    "tdah",
    "meth",
    "gambling",
    "gamblers",
    "al-anon",
    "alanon",
    "nar-anon",
    "naranon",
    # "sobri" as a stem would catch "sobrina" (niece): the words only.
    "sobrio",
    "sobria",
    "sobrios",
    "sobrias",
)

#: Credentials that say what kind of counsellor someone is, matched after a comma only
#: ("Grace Lee, CADC"): short, they would also turn up in the random codes of video links
#: ("meet.example.org/abc-lpcc-xyz"), hexadecimal ids ("…-cadc-…") and names (Mac, Mat).
CREDENTIALS = (
    "cadc",
    "ladc",
    "lcadc",
    "casac",
    "lcdc",
    "csac",
    "ncac",
    "lmhc",
    "lpc",
    "lpcc",
    "lcsw",
    "lmft",
    "psyd",
)

CLINICAL = re.compile(
    "|".join(
        [rf"{stem}\w*" for stem in CLINICAL_STEMS]
        + [rf"(?<![^\W_]){word}(?![^\W_])" for word in CLINICAL_WORDS]
        + [rf"(?:(?<=,)|(?<=, )){word}(?![^\W_])" for word in CREDENTIALS]
    )
)
STEM_START = re.compile(r"\w*$")


@dataclass(frozen=True)
class Hit:
    """One clinical word found: `word` as matched (folded), `shown` as typed."""

    word: str
    shown: str


def has_control(text: str) -> bool:
    return any(unicodedata.category(ch) in REFUSED_CATEGORIES for ch in text)


@lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    if unicodedata.category(ch) in REFUSED_CATEGORIES:
        return ""  # a zero-width joiner inside a word must not hide it
    out = []
    for part in unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", ch)):
        if unicodedata.combining(part):
            continue  # accents off: "adicción" is matched as "adiccion"
        if not part.isascii():
            # The package's answers, derived once (bench/lookalikes.py): its own table costs
            # each process about 7 MB (issue 19: gunicorn workers under 120 MB).
            part = LATIN.get(part, part)
        out.append(part.casefold())
    return "".join(out)


def fold(text: str) -> tuple[str, list[int]]:
    """The folded text, and for each of its characters the index of the one it came from."""
    folded: list[str] = []
    origin: list[int] = []
    for index, ch in enumerate(text):
        piece = _fold_char(ch)
        folded.append(piece)
        origin.extend([index] * len(piece))
    return "".join(folded), origin


def clinical_hits(text: str) -> list[Hit]:
    """Every clinical word in `text`, in order, once each."""
    folded, origin = fold(text or "")
    hits: dict[str, Hit] = {}
    for match in CLINICAL.finditer(folded):
        start, end = match.span()
        # A stem found inside a word is shown with the whole word it is in.
        start -= len(STEM_START.search(folded, 0, start).group(0))
        word = folded[start:end]
        hits.setdefault(word, Hit(word, text[origin[start] : origin[end - 1] + 1]))
    return list(hits.values())


def clinical_words(text: str) -> tuple[str, ...]:
    return tuple(hit.word for hit in clinical_hits(text))


def refuse_controls(text: str | None, *, field: str) -> str:
    """`text` stripped, or ValidationError naming `field` if it holds a control character
    (for text that is never screened for words, such as the program's own name)."""
    text = (text or "").strip()
    if has_control(text):
        raise ValidationError(
            _(
                "Use letters, numbers, spaces and punctuation only: no line breaks, tabs or "
                "invisible characters."
            ),
            field=field,
        )
    return text


def screen(text: str | None, *, field: str, confirmed: tuple[str, ...] | None = None) -> str:
    """`text` stripped, or ValidationError naming `field`.

    `confirmed` (a location only): the clinical words the person saw and chose to keep; the
    text passes when every word it contains is among them (the caller audits that).
    """
    text = refuse_controls(text, field=field)
    unconfirmed = [h for h in clinical_hits(text) if h.word not in (confirmed or ())]
    if unconfirmed:
        shown = ", ".join(f'"{hit.shown}"' for hit in unconfirmed)
        if confirmed is None:
            message = _(
                "Emails and calendar files show this, so it must not say what kind of care "
                "this is: leave out %(words)s.",
                words=shown,
            )
        else:
            message = _(
                "Emails and calendar files show this, and it contains %(words)s, which can "
                "tell a reader what kind of care this is. Change it, or tick “Use it "
                "anyway” if it is part of a real address.",
                words=shown,
            )
        raise ScreenedWords(message, field=field, words=tuple(h.word for h in unconfirmed))
    return text


class ScreenedWords(ValidationError):
    """Refused for clinical words; `words` (folded) are what a confirmation must name."""

    def __init__(self, message: str, field: str | None, words: tuple[str, ...]):
        super().__init__(message, field=field)
        self.words = words


def safe_sender_name(name: str | None) -> str:
    """The sender name to put on an email now: a stored one saved before this screen
    existed, with a line break or a clinical word, must neither make every email fail nor
    reach an inbox, so it gives way to a neutral name."""
    name = (name or "").strip()
    if not name or not _neutral_name(name):
        return _("Family Sessions")
    return name


def safe_staff_name(name: str) -> str:
    """A therapist's stored name as an email or calendar file prints it: one saved before a
    word joined the screen ("Grace Lee, LMHC") is printed without that word."""
    return _without_clinical_words(name) or safe_sender_name(None)


@lru_cache(maxsize=256)
def _without_clinical_words(name: str) -> str:
    # Each word hit goes with what is attached to it ("LCDC-II"), then any comma left over.
    for hit in clinical_hits(name):
        name = re.sub(re.escape(hit.shown) + r"\S*", "", name)
    name = re.sub(r"(\s*,)+\s*$", "", re.sub(r"\s*,(\s*,)+", ",", name))
    return " ".join(name.split())


@lru_cache(maxsize=64)
def _neutral_name(name: str) -> bool:
    # A program has one sender name, screened on every email and calendar file it names:
    # the answer is the name's alone (the words screened for are fixed), so once a process.
    return not has_control(name) and not clinical_hits(name)
