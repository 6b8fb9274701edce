"""Consents under 42 CFR Part 2: signing, invitations, ending access, and what each person
sees of them. Who may see what, now, is answered by `familylink.services.access` (the gate).

Modules: `wording` (the form's fixed text), `signing` (portal and paper), `invitations`,
`ending` (the one operation that ends a family member's access), `records` (lists, the
disclosure log, closing a record). Callers outside the services use this package's names.
"""

from familylink.services.access import (
    EXPIRING_SOON,
    active_consent,
    consent_end,
    family_in_force,
    is_active,
    linked_patients,
    may_disclose,
    pairs_with_scope,
    patient_for_family,
    status_of,
)
from familylink.services.consent.ending import (
    SweepReport,
    end_family_access,
    revoke_consent,
    sweep_consents,
)
from familylink.services.consent.invitations import (
    WRONG_ADDRESS,
    accept_invitation,
    check_addressee,
    invitation,
    link_family_member,
    register_through_invitation,
)
from familylink.services.consent.records import (
    DISCLOSURE_LABELS,
    FamilyStanding,
    consent_for_viewer,
    consents_of,
    disclosures_of,
    family_contacts,
    family_standing,
    other_grants,
    printable,
)
from familylink.services.consent.signing import (
    MAX_DAYS_AFTER_EPISODE,
    ConsentDetails,
    check_details,
    record_paper_consent,
    sign_consent,
)
from familylink.services.consent.wording import (
    DEFAULT_PURPOSE,
    FAMILY_HIDDEN_STATEMENT,
    FAMILY_VISIBLE_STATEMENT,
    FORM_VERSION,
    REDISCLOSURE_NOTICE,
    RELIANCE_STATEMENT,
    REVOCATION_STATEMENT,
    SCOPE_EXPLANATIONS,
    form_terms,
    render_snapshot,
)

__all__ = [
    "DEFAULT_PURPOSE",
    "FAMILY_HIDDEN_STATEMENT",
    "FAMILY_VISIBLE_STATEMENT",
    "DISCLOSURE_LABELS",
    "EXPIRING_SOON",
    "FORM_VERSION",
    "MAX_DAYS_AFTER_EPISODE",
    "REDISCLOSURE_NOTICE",
    "RELIANCE_STATEMENT",
    "REVOCATION_STATEMENT",
    "SCOPE_EXPLANATIONS",
    "WRONG_ADDRESS",
    "ConsentDetails",
    "SweepReport",
    "accept_invitation",
    "active_consent",
    "check_addressee",
    "check_details",
    "consent_end",
    "consent_for_viewer",
    "consents_of",
    "disclosures_of",
    "end_family_access",
    "family_contacts",
    "family_in_force",
    "family_standing",
    "FamilyStanding",
    "form_terms",
    "invitation",
    "is_active",
    "link_family_member",
    "linked_patients",
    "may_disclose",
    "other_grants",
    "pairs_with_scope",
    "patient_for_family",
    "printable",
    "record_paper_consent",
    "register_through_invitation",
    "render_snapshot",
    "revoke_consent",
    "sign_consent",
    "status_of",
    "sweep_consents",
]
