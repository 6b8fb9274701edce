"""A choice nobody was offered (a form sent by hand) is refused with one clear, translated
message beside its field, 400, nothing changed; and a service's message about the reminder
times shows beside the boxes it is about."""

from __future__ import annotations

import re

import pytest
from flask_wtf import FlaskForm
from wtforms.fields.choices import SelectFieldBase
from wtforms.fields.core import UnboundField

from familylink.services.program import forget_cached_program, get_program
from tests.factories import set_program
from tests.web.test_admin_settings import FORM
from tests.web.test_auth_routes import GOOD, _users

CLEAR = "Choose one of the options shown."
CLEAR_ES = "Elija una de las opciones que se muestran."


def _choice_fields():
    """Every choice field of every form of the app, as (form, field name, field class)."""
    forms, waiting = [], list(FlaskForm.__subclasses__())
    while waiting:
        form = waiting.pop()
        waiting.extend(form.__subclasses__())
        if form.__module__.startswith("familylink."):
            forms.append(form)
    for form in forms:
        for name in dir(form):
            field = getattr(form, name, None)
            if isinstance(field, UnboundField) and issubclass(field.field_class, SelectFieldBase):
                yield form.__name__, name, field.field_class


def test_every_choice_field_answers_a_forged_value_with_one_clear_message(app):
    from familylink.forms import OfferedChoices

    fields = list(_choice_fields())
    assert len(fields) > 15  # every blueprint's forms were found
    unclear = [(f, n) for f, n, kind in fields if not issubclass(kind, OfferedChoices)]
    assert unclear == []


@pytest.mark.parametrize(("language", "message"), [("en", CLEAR), ("es", CLEAR_ES)])
def test_a_forged_time_zone_at_sign_up_is_refused_clearly(app, client, language, message):
    data = {**GOOD, "timezone": "Moon/Base"}
    response = client.post("/register", data=data, headers={"Accept-Language": language})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in page and 'id="timezone-error"' in page
    assert "valid choice" not in page.lower() and "válid" not in page
    assert _users(app) == 0


@pytest.mark.parametrize("value", [["soon"], ["5"], ["48", "99999999999999999999"]])
def test_a_forged_reminder_time_is_refused_clearly(app, admin_client, value):
    response = admin_client.post("/admin/settings", data={**FORM, "reminder_offsets_hours": value})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert f'<p class="error" id="reminder_offsets_hours-error">{CLEAR}</p>' in page
    assert "valid choice" not in page.lower()
    with app.app_context():
        forget_cached_program()
        assert get_program().name != FORM["name"]


def test_a_refused_stored_reminder_time_is_explained_beside_the_boxes(app, admin_client):
    """A time stored before today's limits is offered again as a box; saving it reaches the
    service, whose message names the field the boxes are."""
    set_program(app, reminder_offsets_hours=[500, 48])
    response = admin_client.post(
        "/admin/settings", data={**FORM, "reminder_offsets_hours": ["500", "48"]}
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    error = re.search(r'<p class="error" id="reminder_offsets_hours-error">([^<]*)</p>', page)
    assert error and "one to five reminder times" in error.group(1)
    with app.app_context():
        forget_cached_program()
        assert get_program().name != FORM["name"]
