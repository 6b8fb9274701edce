"""Scope carries each scope's words; the explanations are signed legal text (form versions 1
and 2: version 2 added the family-visibility choice and kept every scope's words)."""

from familylink.models import Scope
from familylink.services.consent import FORM_VERSION, SCOPE_EXPLANATIONS

# Verbatim from consent form version 1: every snapshot signed so far holds these words, so a
# change here needs a new form version, not an edit.
SIGNED_WORDS_V1 = {
    "scheduling": "Family session times: they can see and book family sessions with my "
    "therapist, and get email reminders about them.",
    "attendance": "Attendance: they can see whether I came to my sessions.",
    "progress": "General progress: my therapist can share short, general notes about how I am "
    "doing, written for my family. Never my therapy notes.",
}


def test_the_explanations_are_the_signed_words_of_form_version_1():
    assert FORM_VERSION in {"1", "2"}
    assert {scope.value: scope.explanation for scope in Scope} == SIGNED_WORDS_V1


def test_scopes_are_their_values_and_lead_with_their_labels():
    assert Scope("attendance") is Scope.ATTENDANCE and Scope.ATTENDANCE == "attendance"
    assert [scope.label for scope in Scope] == [
        "Family session times",
        "Attendance",
        "General progress",
    ]
    assert all(scope.explanation.startswith(f"{scope.label}: ") for scope in Scope)
    assert {scope: scope.explanation for scope in Scope} == SCOPE_EXPLANATIONS


def test_an_explanation_said_once_per_catalogue_reads_as_flask_babel_says_it(app):
    """`Scope.explanation` keeps what it said for each catalogue: inside a request and under
    `force_locale`, switching languages back and forth, it says what Flask-Babel's gettext
    says at that moment."""
    from flask_babel import force_locale, gettext

    from familylink import i18n

    def plain(scope: Scope) -> str:
        return gettext("%(label)s: %(meaning)s", label=scope.label, meaning=scope.description)

    said = {}
    with app.test_request_context("/", headers={"Accept-Language": "es"}):
        for language in ("es", "en", i18n.PSEUDO_LOCALE, "es", "en"):
            with force_locale(language):
                for scope in Scope:
                    assert scope.explanation == plain(scope)
                    said[language, scope] = scope.explanation
        # The request's own language again, after the forced ones.
        assert [scope.explanation for scope in Scope] == [said["es", scope] for scope in Scope]
    assert said["es", Scope.ATTENDANCE] != said["en", Scope.ATTENDANCE]
    assert said["en", Scope.ATTENDANCE] == SIGNED_WORDS_V1["attendance"]
