"""Practice tools through the test client: the member's pages, sharing with the therapist,
the printable safety card, the crisis page, and everyone who must never see them."""

from datetime import timedelta

import pytest

from familylink.extensions import db
from familylink.models import MessageVersion, PracticeEntry, ToolKind, User
from familylink.services import consent
from tests.factories import set_after_hours_phone
from tests.moments import NOON
from tests.queries import count_rows

SECRET = "Kitchen drawer by the sink"


@pytest.fixture
def settings_override():
    return {"NOW_OVERRIDE": NOON}


@pytest.fixture
def world(reading_world):
    """Dr. Lee's patient Jordan consents to Maria; Dr. Patel's patient Casey to Drew."""
    return reading_world(jordan_name="Jordan Rivera", drew_for_casey=True)


def _plan(client, auth, world, *, share=""):
    auth.login("maria@example.org")
    response = client.post(
        "/learn/practice/safety_plan/new",
        data={
            "warning_signs": "Shouting",
            "people_to_call": "Aunt Rosa 555-0101",
            "naloxone_place": SECRET,
            "safe_place": "Rosa's house",
            "share": share,
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return int(response.headers["Location"].rsplit("/", 1)[1])


def _message(client, auth, world, text, *, entry_id=None, share=""):
    auth.login("maria@example.org")
    path = f"/learn/practice/{entry_id}" if entry_id else "/learn/practice/message/new"
    response = client.post(
        path,
        data={"title": "Dinner", "message": text, "checked": ["brief", "feelings"], "share": share},
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return int(response.headers["Location"].rsplit("/", 1)[1])


def _therapist_page(client, auth, world, email="lee@example.org", patient="jordan"):
    auth.logout()
    auth.login(email)
    return client.get(f"/learn/therapist/patients/{world[patient]}")


@pytest.mark.parametrize("kind", ["before_after", "message", "rewards", "safety_plan"])
def test_each_tool_page_opens_for_a_family_member(client, auth, world, kind):
    auth.login("maria@example.org")
    page = client.get(f"/learn/practice/{kind}/new")
    assert page.status_code == 200
    assert "Nobody: keep it private" in page.get_data(as_text=True)


def test_the_tools_page_and_each_tool_say_what_the_tool_is_for(client, auth, world):
    auth.login("maria@example.org")
    home = client.get("/learn/practice/").get_data(as_text=True)
    for tool in ToolKind:
        assert str(tool.label) in home and str(tool.description) in home
        page = client.get(f"/learn/practice/{tool.value}/new").get_data(as_text=True)
        assert str(tool.description) in page


def test_the_share_list_offers_only_consented_patients_therapists(client, auth, world):
    auth.login("maria@example.org")
    page = client.get("/learn/practice/rewards/new").get_data(as_text=True)
    assert "Jordan Rivera&#39;s therapist" in page
    assert f'value="{world["casey"]}"' not in page


def test_a_name_in_the_share_list_is_escaped(app, client, auth, world):
    with app.app_context():
        db.session.get(User, world["jordan"]).name = "<b>Jo</b>"
        db.session.commit()
    auth.login("maria@example.org")
    page = client.get("/learn/practice/rewards/new").get_data(as_text=True)
    assert "&lt;b&gt;Jo&lt;/b&gt;" in page and "<b>Jo</b>" not in page


@pytest.mark.parametrize("email", ["jordan@example.org", "lee@example.org"])
def test_only_family_members_have_practice_pages(client, auth, world, email):
    auth.login(email)
    assert client.get("/learn/practice/").status_code == 404


def test_a_saved_plan_is_private_and_shown_back_to_its_writer(app, client, auth, world):
    entry_id = _plan(client, auth, world)
    assert SECRET in client.get(f"/learn/practice/{entry_id}").get_data(as_text=True)
    assert count_rows(app, PracticeEntry, PracticeEntry.shared_patient_id.is_not(None)) == 0
    assert SECRET not in _therapist_page(client, auth, world).get_data(as_text=True)


def test_the_therapist_sees_a_shared_tool(client, auth, world):
    _plan(client, auth, world, share=str(world["jordan"]))
    assert SECRET in _therapist_page(client, auth, world).get_data(as_text=True)


def test_unsharing_hides_it_from_the_therapist_again(client, auth, world):
    entry_id = _plan(client, auth, world, share=str(world["jordan"]))
    client.post(f"/learn/practice/{entry_id}", data={"naloxone_place": SECRET, "share": ""})
    assert SECRET not in _therapist_page(client, auth, world).get_data(as_text=True)


def test_another_patients_therapist_never_sees_it(client, auth, world):
    _plan(client, auth, world, share=str(world["jordan"]))
    assert _therapist_page(client, auth, world, "patel@example.org").status_code == 404
    page = _therapist_page(client, auth, world, "patel@example.org", "casey")
    assert SECRET not in page.get_data(as_text=True)


def test_after_revocation_the_therapist_no_longer_sees_it(app, client, auth, world):
    _plan(client, auth, world, share=str(world["jordan"]))
    with app.app_context():
        jordan = db.session.get(User, world["jordan"])
        consent.revoke_consent(jordan, world["consent"], now=NOON - timedelta(minutes=5))
        db.session.commit()
    assert SECRET not in _therapist_page(client, auth, world).get_data(as_text=True)


def test_the_patient_never_sees_it(client, auth, world):
    entry_id = _plan(client, auth, world, share=str(world["jordan"]))
    auth.logout()
    auth.login("jordan@example.org")
    assert client.get(f"/learn/practice/{entry_id}").status_code == 404
    assert client.get(f"/learn/practice/{entry_id}/card").status_code == 404
    for path in ("/patient/", "/help/crisis", f"/learn/therapist/patients/{world['jordan']}"):
        assert SECRET not in client.get(path).get_data(as_text=True)


def test_another_family_member_gets_404_for_an_entry(client, auth, world):
    entry_id = _plan(client, auth, world)
    auth.logout()
    auth.login("drew@example.org")
    assert client.get(f"/learn/practice/{entry_id}").status_code == 404
    assert client.post(f"/learn/practice/{entry_id}", data={"share": ""}).status_code == 404


def test_a_rewrite_keeps_the_earlier_version(app, client, auth, world):
    entry_id = _message(client, auth, world, "You always ruin dinner.")
    _message(client, auth, world, "I love our dinners. Join us at six?", entry_id=entry_id)
    assert count_rows(app, MessageVersion) == 2
    page = client.get(f"/learn/practice/{entry_id}").get_data(as_text=True)
    assert "You always ruin dinner." in page and "Earlier versions" in page


def test_the_therapist_sees_a_shared_rewrite(client, auth, world):
    _message(client, auth, world, "I love our dinners.", share=str(world["jordan"]))
    assert "I love our dinners." in _therapist_page(client, auth, world).get_data(as_text=True)


def test_an_over_long_answer_is_refused_beside_its_field(app, client, auth, world):
    auth.login("maria@example.org")
    response = client.post(
        "/learn/practice/rewards/new", data={"title": "Plan", "when_sober": "x" * 2001}
    )
    assert response.status_code == 400
    assert "Use at most 2000 characters." in response.get_data(as_text=True)
    assert count_rows(app, PracticeEntry) == 0


def test_a_forged_share_choice_is_refused(app, client, auth, world):
    auth.login("maria@example.org")
    response = client.post(
        "/learn/practice/rewards/new", data={"title": "Plan", "share": str(world["casey"])}
    )
    assert response.status_code == 400
    assert "Choose a therapist from the list, or nobody." in response.get_data(as_text=True)
    assert count_rows(app, PracticeEntry) == 0


def test_an_unknown_tool_is_404(client, auth, world):
    auth.login("maria@example.org")
    assert client.get("/learn/practice/diary/new").status_code == 404


def test_a_second_new_safety_plan_opens_the_first(client, auth, world):
    entry_id = _plan(client, auth, world)
    response = client.get("/learn/practice/safety_plan/new")
    assert response.headers["Location"].endswith(f"/learn/practice/{entry_id}")


def test_the_card_shows_the_plan_and_the_numbers(app, client, auth, world):
    set_after_hours_phone(app, "(555) 010-2000")
    entry_id = _plan(client, auth, world)
    page = client.get(f"/learn/practice/{entry_id}/card").get_data(as_text=True)
    for text in (SECRET, "tel:911", "tel:988", "1-800-799-7233", "(555) 010-2000"):
        assert text in page


def test_only_a_safety_plan_has_a_card(client, auth, world):
    entry_id = _message(client, auth, world, "Hello")
    assert client.get(f"/learn/practice/{entry_id}/card").status_code == 404


def test_the_crisis_page_shows_the_members_own_plan(client, auth, world):
    _plan(client, auth, world)
    assert SECRET in client.get("/help/crisis").get_data(as_text=True)


@pytest.mark.parametrize("email", [None, "drew@example.org", "lee@example.org"])
def test_the_crisis_page_shows_nobody_elses_plan(client, auth, world, email):
    _plan(client, auth, world, share=str(world["jordan"]))
    auth.logout()
    if email:
        auth.login(email)
    page = client.get("/help/crisis")
    assert page.status_code == 200
    assert SECRET not in page.get_data(as_text=True)


def test_a_tool_suggested_with_a_reading_is_linked_from_the_library(client, auth, world):
    auth.login("lee@example.org")
    client.post(
        f"/learn/therapist/patients/{world['jordan']}/assign",
        data={
            "family": "all",
            "modules": [str(world["modules"]["boundaries"])],
            "tool": "before_after",
        },
    )
    auth.logout()
    auth.login("maria@example.org")
    assert "/learn/practice/before_after/new" in client.get("/learn/").get_data(as_text=True)


def test_a_member_deletes_an_entry_and_its_versions(app, client, auth, world):
    entry_id = _message(client, auth, world, "Hello")
    _message(client, auth, world, "Hello, love", entry_id=entry_id)
    response = client.post(f"/learn/practice/{entry_id}/delete")
    assert response.status_code == 302
    assert count_rows(app, PracticeEntry) == 0 and count_rows(app, MessageVersion) == 0


def test_nobody_else_deletes_an_entry(app, client, auth, world):
    entry_id = _plan(client, auth, world)
    auth.logout()
    auth.login("drew@example.org")
    assert client.post(f"/learn/practice/{entry_id}/delete").status_code == 404
    assert count_rows(app, PracticeEntry) == 1
