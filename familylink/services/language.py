"""A person's language: chosen on the switch or the account page, kept on the account."""

from datetime import datetime

from flask_babel import gettext as _

from familylink.i18n import LANGUAGES
from familylink.models import User
from familylink.services import audit
from familylink.services.errors import ValidationError


def choose(person: User, language: str, *, now: datetime) -> None:
    """Pages and emails for `person` speak `language` from now on (audited when it changes)."""
    if language not in LANGUAGES:
        raise ValidationError(_("Choose one of the languages listed."), "language")
    if person.locale == language:
        return
    detail = {"from": person.locale, "to": language}
    person.locale = language
    audit.record("account.language_changed", actor=person, obj=person, detail=detail, now=now)
