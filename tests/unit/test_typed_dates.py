"""Every required date or month field of every form refuses an entry of spaces only, as it
refuses an empty one: the form is not valid and the field says why (before, spaces passed
`InputRequired` and reached a service as None: a 500 on enrolment and day overrides)."""

import importlib
import inspect
import pkgutil

import pytest
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms.validators import InputRequired

import familylink
from familylink.forms import DayField, WholeMonthField


def _required_typed_date_fields():
    found = []
    for module_info in pkgutil.walk_packages(familylink.__path__, "familylink."):
        if not module_info.name.endswith("forms"):
            continue
        module = importlib.import_module(module_info.name)
        for _, form in inspect.getmembers(module, inspect.isclass):
            if not issubclass(form, FlaskForm) or form.__module__ != module.__name__:
                continue
            for name, unbound in inspect.getmembers(form):
                field_class = getattr(unbound, "field_class", None)
                validators = unbound.kwargs.get("validators", []) if field_class else []
                typed_date = field_class and issubclass(field_class, (DayField, WholeMonthField))
                if typed_date and any(isinstance(v, InputRequired) for v in validators):
                    found.append((form, name))
    return found


FIELDS = _required_typed_date_fields()


def test_the_forms_have_required_date_fields_to_check():
    assert len(FIELDS) >= 6


@pytest.mark.parametrize("blank", ["   ", "\t", " \n "])
@pytest.mark.parametrize(("form", "name"), FIELDS, ids=lambda v: getattr(v, "__name__", v))
def test_a_required_date_of_spaces_only_is_refused_beside_its_field(app, form, name, blank):
    with app.test_request_context(method="POST"):
        bound = form(formdata=MultiDict({name: blank}))
        bound.validate()
        assert bound[name].errors, (form.__name__, name)
        assert bound[name].data is None
