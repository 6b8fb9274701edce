"""The consent form's fixed wording: what each scope means, the right to revoke, the §2.32
notice, and the snapshot of the whole text as signed."""

from __future__ import annotations

from datetime import datetime

from flask import render_template
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l

from familylink.i18n import DEFAULT_LANGUAGE
from familylink.models import User
from familylink.models.consent import Scope

#: Version of the consent wording; the snapshot template is ``consent/text_v<FORM_VERSION>.txt``.
FORM_VERSION = "2"  # 2 added the family-visibility choice; version 1's words are unchanged

# The wording below is signed text, in each language: the English is the msgid, the Spanish is
# in the catalogue, and tests/unit/test_consent_spanish.py pins the Spanish signed words, so a
# catalogue edit cannot change a signed form without a new FORM_VERSION.

#: The further choice on each consent, off by default (DESIGN.md: separated parents, a
#: partner a parent must not contact): without it no page shows one family member another.
FAMILY_VISIBLE_STATEMENT = _l(
    "They may see, and invite to family sessions, the other family members I share with."
)
FAMILY_HIDDEN_STATEMENT = _l(
    "They are not shown the other family members I share with, and those are not told about "
    "them by FamilyLink."
)

DEFAULT_PURPOSE = _l("Coordinating and taking part in family therapy.")

#: Plain-language meaning of each scope, shown beside its checkbox and kept in the snapshot.
#: The words are Scope's own; this mapping stays for callers that look them up by name.
SCOPE_EXPLANATIONS = {scope: scope.explanation for scope in Scope}

REVOCATION_STATEMENT = _l(
    "I can take back (revoke) this consent at any time, for one person at a time: on my "
    'FamilyLink page "My family\'s access", or by telling my therapist in writing. It ends '
    "at once."
)
RELIANCE_STATEMENT = _l(
    "Revoking does not undo what was already shared, or actions the program already took, "
    "while this consent was in force."
)
REDISCLOSURE_NOTICE = _l(
    "This information has been disclosed to you from records protected by federal "
    "confidentiality rules (42 CFR part 2). The federal rules prohibit you from making any "
    "further disclosure of information in this record that identifies a patient as having or "
    "having had a substance use disorder either directly, by reference to publicly available "
    "information, or through verification of such identification by another person unless "
    "further disclosure is expressly permitted by the written consent of the individual whose "
    "information is being disclosed or as otherwise permitted by 42 CFR part 2. A general "
    "authorization for the release of medical or other information is NOT sufficient for this "
    "purpose (see § 2.31). The federal rules restrict any use of the information to "
    "investigate or prosecute with regard to a crime any patient with a substance use "
    "disorder, except as provided at §§ 2.12(c)(5) and 2.65."
)

MAX_DAYS_AFTER_EPISODE = 365


def form_terms() -> dict:
    """The fixed wording the form shows, passed to both the page and the snapshot, in the
    language of the moment (plain strings: a template escapes them, unlike lazy ones)."""
    return {
        "form_version": FORM_VERSION,
        "family_visible_statement": str(FAMILY_VISIBLE_STATEMENT),
        "family_hidden_statement": str(FAMILY_HIDDEN_STATEMENT),
        "revocation_statement": str(REVOCATION_STATEMENT),
        "reliance_statement": str(RELIANCE_STATEMENT),
        "redisclosure_notice": str(REDISCLOSURE_NOTICE),
    }


def render_snapshot(
    columns: dict,
    *,
    patient_name: str,
    program_name: str,
    signed_at: datetime,
    recorded_by: User | None = None,
    locale: str = DEFAULT_LANGUAGE,
) -> str:
    """The consent's full text as signed, in the language it was signed in (paper consents
    name who recorded them). Each language has its own text file of the same form version."""
    suffix = "" if locale == DEFAULT_LANGUAGE else f".{locale}"
    with force_locale(locale):
        return render_template(
            f"consent/text_v{FORM_VERSION}{suffix}.txt",
            c=columns,
            patient_name=patient_name,
            program_name=program_name,
            signed_at=signed_at,
            recorded_by=recorded_by,
            **form_terms(),
        )
