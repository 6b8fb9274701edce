"""The therapist's booking forms are whole once made: what they need is given to them."""

from types import SimpleNamespace

import pytest

from familylink.booking.forms import BookForFamilyForm, TherapistMoveForm

KINDS = [SimpleNamespace(id=4, name="Family session"), SimpleNamespace(id=9, name="Check-in")]
FAMILY = [SimpleNamespace(id=12, name="Maria")]


def test_a_move_form_cannot_be_made_without_the_therapists_zone(app):
    with app.test_request_context(), pytest.raises(TypeError):
        TherapistMoveForm()


def test_a_typed_day_and_time_are_read_in_the_zone_the_move_form_was_given(app):
    data = {"other_day": "2026-11-20", "other_time": "09:00"}
    with app.test_request_context(method="POST", data=data):
        form = TherapistMoveForm(zone="America/New_York")
        assert form.validate()
        assert form.slot.data == "2026-11-20T14:00Z"


def test_a_book_for_family_form_cannot_be_made_without_its_kinds_and_family(app):
    with app.test_request_context(), pytest.raises(TypeError):
        BookForFamilyForm()


@pytest.mark.parametrize(
    ("method", "sent", "asked", "chosen"),
    [
        ("GET", {}, 9, 9),  # the kind the address asks for
        ("GET", {}, 77, 4),  # a kind not offered: the first
        ("GET", {}, None, 4),
        ("POST", {"session_type": "9"}, 4, 9),  # the kind sent wins over the address
        ("POST", {"session_type": "x"}, 9, 4),  # a kind sent that is no id: the first
    ],
)
def test_the_book_for_family_form_chooses_the_kind_sent_else_asked_else_first(
    app, method, sent, asked, chosen
):
    with app.test_request_context(method=method, data=sent):
        form = BookForFamilyForm(types=KINDS, family=FAMILY, type_asked=asked)
        assert form.chosen.id == chosen
        assert form.session_type.choices == [(4, "Family session"), (9, "Check-in")]
        assert form.attendees.choices == [(12, "Maria")]


def test_a_book_for_family_form_with_no_kinds_offered_chooses_none(app):
    with app.test_request_context():
        assert BookForFamilyForm(types=[], family=FAMILY, type_asked=None).chosen is None


def test_repeat_weekly_says_its_choices_in_each_requests_language(app):
    """The choices are built once per process (`REPEAT_CHOICES`): each form draws them in its
    own request's language, one request after another."""
    from familylink.booking.forms import BookPrivateForm
    from familylink.forms import form_field

    drawn = {}
    for language in ("es", "en", "es"):
        app.config["FORCE_LOCALE"] = language
        with app.test_request_context():
            drawn.setdefault(language, []).append(str(form_field(BookPrivateForm().weeks)))
    app.config.pop("FORCE_LOCALE")
    assert '<option value="0">No, just this once</option>' in drawn["en"][0]
    assert '<option value="3">For 3 weeks</option>' in drawn["en"][0]
    assert '<option value="0">No, solo esta vez</option>' in drawn["es"][0]
    assert '<option value="12">Durante 12 semanas</option>' in drawn["es"][1]
    assert drawn["es"][0] == drawn["es"][1]
