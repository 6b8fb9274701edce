import secrets

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional

from familylink.booking.slots import parse_slot, slot_or_none, typed_slot
from familylink.forms import HiddenField, MultiCheckboxField, RadioField, SelectField, id_choice
from familylink.models import SessionType, User
from familylink.services.booking import MAX_WEEKS, MIN_WEEKS, THERAPIST_CANCEL_REASONS
from familylink.services.errors import DomainError


class PrivateBookingChoices:
    """What a private-booking form (the family's or the therapist's) passes to
    `booking.book_private`: the same four choices on either side."""

    def booking_choices(self) -> dict:
        return {
            "session_type_id": self.session_type.data,
            "starts_at": parse_slot(self.slot.data),
            "attendee_ids": self.attendees.data,
            "note": self.note.data,
        }


def weeks_choice(value) -> int:
    """`coerce` for "Repeat weekly": 0 (once) or a number of weeks; anything else refused."""
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        raise ValueError(_l("Choose how many weeks from the list.")) from None


# "Repeat weekly"'s choices, built once: lazy words, said in each request's language when the
# select is drawn (built for every form, they were built whether drawn or not).
REPEAT_CHOICES = [(0, _l("No, just this once"))] + [
    (n, _l("For %(n)d weeks", n=n)) for n in range(MIN_WEEKS, MAX_WEEKS + 1)
]


class RepeatWeekly:
    """ "Repeat weekly" on a private-booking form (the family's or the therapist's): once,
    or every week for MIN_WEEKS to MAX_WEEKS weeks; the service checks the number."""

    weeks = SelectField(
        _l("Repeat weekly"),
        coerce=weeks_choice,
        validate_choice=False,
        description=_l("Each week is checked before anything is booked."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.weeks.choices = REPEAT_CHOICES

    def series_choices(self) -> dict:
        """What `booking.plan_series` and `book_series` take from this form, besides the
        kind of session."""
        return {
            "first_start": slot_or_none(self.slot.data),
            "weeks": self.weeks.data,
            "attendee_ids": self.attendees.data,
        }


class BookPrivateForm(RepeatWeekly, FlaskForm):
    """The family's booking: a time from the week shown (radio buttons, one group per day),
    who else to invite, a note and (when the program allows it) "Repeat weekly"; then the
    confirmation step sends it again with `confirmed` set. The kind of session comes from
    the page's address (`?type=`)."""

    slot = StringField(_l("Time"), validators=[InputRequired(message=_l("Choose a time."))])
    attendees = MultiCheckboxField(
        _l("Also invite"),
        coerce=id_choice,
        validate_choice=False,
        description=_l("Each person you invite gets an email with the time and a calendar file."),
    )
    note = TextAreaField(
        _l("A note for the therapist (optional)"),
        validators=[Length(max=2000, message=_l("Use at most 2000 characters."))],
    )
    request_key = HiddenField()
    confirmed = HiddenField()
    # Set by "Choose another time" on a confirmation page: the week again, choices kept.
    change = HiddenField()

    def booking_choices(self) -> dict:
        return {
            "starts_at": parse_slot(self.slot.data),
            "attendee_ids": self.attendees.data,
            "note": self.note.data,
        }


class BookForFamilyForm(PrivateBookingChoices, RepeatWeekly, FlaskForm):
    """The therapist books a private session for a patient's family: once, or every week
    for 2 to 12 weeks at the same local time (then a confirmation page lists each week and
    sends the form again with `confirmed` set)."""

    session_type = SelectField(_l("Kind of session"), coerce=id_choice, validate_choice=False)
    # A time from the week shown (the week picker's radio buttons).
    slot = StringField(_l("Time"), validators=[InputRequired(message=_l("Choose a time."))])
    attendees = MultiCheckboxField(_l("Family members"), coerce=id_choice, validate_choice=False)
    note = StringField(
        _l("Note"),
        validators=[Optional(), Length(max=2000, message=_l("Use at most 2000 characters."))],
    )
    # The form's one-time key, as on the family's form: sent twice (a double click, the
    # series' confirmation sent again), it finds the booking it made.
    request_key = HiddenField()
    confirmed = HiddenField()

    def __init__(
        self,
        *,
        types: list[SessionType],
        family: list[User],
        type_asked: int | None,
        **kwargs,
    ):
        """`types`: the kinds of session offered; `family`: the members who may be booked;
        `type_asked`: the kind the page's address asks for (`?type=`). `chosen` is the kind
        sent, else the one asked, else the first (None when none is offered)."""
        super().__init__(**kwargs)
        self.types = types
        self.session_type.choices = [(t.id, t.name) for t in types]
        self.attendees.choices = [(m.id, m.name) for m in family]
        wanted = self.session_type.data if self.is_submitted() else type_asked
        if not self.request_key.data:
            self.request_key.data = secrets.token_urlsafe(24)
        self.chosen: SessionType | None = next(
            (t for t in types if t.id == wanted), types[0] if types else None
        )

    def series_choices(self) -> dict:
        return {"session_type_id": self.session_type.data, **super().series_choices()}

    def booking_choices(self) -> dict:
        return {**super().booking_choices(), "request_key": self.request_key.data}


class GroupSeatForm(FlaskForm):
    attendees = MultiCheckboxField(_l("Also invite"), coerce=id_choice, validate_choice=False)
    request_key = HiddenField()


class RescheduleForm(FlaskForm):
    """The family member moves a session: a time from the week shown."""

    slot = StringField(_l("New time"), validators=[InputRequired(message=_l("Choose a time."))])


class TherapistMoveForm(FlaskForm):
    """The therapist's move of a session (or of this and all future weeks of a series): a
    time from the week shown, or another day and clock time typed in their zone (`zone`),
    since their move accepts any time that overlaps none of their sessions
    (`changes.moves_freely`); either way `slot` holds the time chosen once it validates.
    `confirmed` is set by the page listing every week of a series."""

    slot = StringField(_l("New time"))
    other_day = StringField(_l("Day"), render_kw={"type": "date"})
    other_time = StringField(_l("Time"), render_kw={"type": "time"})
    confirmed = HiddenField()

    def __init__(self, *, zone: str, **kwargs):
        """`zone`: the therapist's time zone, which a typed day and time are in."""
        super().__init__(**kwargs)
        self.zone = zone

    def validate(self, extra_validators=None) -> bool:
        if not super().validate(extra_validators):
            return False
        if self.other_day.data or self.other_time.data:
            try:
                self.slot.data = typed_slot(self.other_day.data, self.other_time.data, self.zone)
            except DomainError as error:
                self.other_time.errors.append(error.message)
                return False
        if not self.slot.data:
            self.slot.errors.append(_("Choose a time."))
            return False
        return True


class CancelReasonField(RadioField):
    """The reasons set after construction, as ExpiryKindField does (tuples in the call are
    deprecated)."""

    def __init__(self, label, **kwargs):
        super().__init__(label, choices=[], **kwargs)
        self.choices = list(THERAPIST_CANCEL_REASONS.items())


class TherapistCancelForm(FlaskForm):
    """The therapist confirms cancelling a family's place and says why (a fixed list: nothing
    typed here can reach the family's email). `week` brings them back to the week they were
    on; the view checks it with `parse_day`."""

    reason = CancelReasonField(
        _l("Why is it cancelled?"),
        validators=[InputRequired(message=_l("Choose why the session is cancelled."))],
        validate_choice=False,
        description=_l("Kept in the audit log. The family's email does not say why."),
    )
    week = HiddenField()
    view = HiddenField()
    # Set: cancel this week of a weekly series and every later one (`booking.cancel_future`).
    future = HiddenField()


class FeedForm(FlaskForm):
    action = HiddenField()
