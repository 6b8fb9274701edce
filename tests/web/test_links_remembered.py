"""Links built once per address the app is served under (`FamilyLink.url_for`): every
remembered link is the one Flask builds, under each script root and for each value type."""

import pytest
from flask import Flask

ROOTS = ["", "/clinic"]


def _sample_values(rule):
    values = {}
    for name, converter in rule._converters.items():
        kind = type(converter).__name__
        if kind == "IntegerConverter":
            values[name] = 7
        elif kind in ("UnicodeConverter", "PathConverter"):
            values[name] = "a-b"
        else:
            return None
    return values


def test_every_remembered_link_is_flasks_own_under_each_root(app):
    built = 0
    for root in ROOTS:  # the second root must not be answered from the first one's links
        with app.test_request_context("/", base_url=f"http://familylink.test{root}"):
            for rule in app.url_map.iter_rules():
                values = _sample_values(rule)
                if values is None or rule.endpoint == "static":
                    continue
                expected = Flask.url_for(app, rule.endpoint, **values)
                assert app.url_for(rule.endpoint, **values) == expected
                assert app.url_for(rule.endpoint, **values) == expected  # now remembered
                assert expected.startswith(f"{root}/")
                built += 1
    assert built > 50


@pytest.mark.parametrize("first", [True, 1])
def test_equal_values_of_different_types_get_their_own_links(app, first):
    with app.test_request_context("/"):
        asked = [app.url_for("booking.index", page=value) for value in (first, 1, True, "1")]
        assert asked == [Flask.url_for(app, "booking.index", page=v) for v in (first, 1, True, "1")]


def test_links_with_an_anchor_or_made_external_are_flasks_own(app):
    with app.test_request_context("/"):
        assert app.url_for("booking.index", _anchor="next") == "/booking/#next"
        assert app.url_for("booking.index", _external=True).startswith("http")
