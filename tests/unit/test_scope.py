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
