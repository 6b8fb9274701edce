"""The reading pages, practice tools and library in Spanish: every visible word of every page
goes through gettext (the pseudo-locale finds the ones that do not), and a Spanish reader
gets Spanish chrome around the Spanish module texts."""

import html
import re

import pytest
from markupsafe import escape
from sqlalchemy import select

from familylink import i18n
from familylink.extensions import db
from familylink.models import LearningModule, ModuleTranslation, PracticeEntry, Program, User
from familylink.services import learning
from tests.moments import NOON

# A safety plan's answers: data the pages show back, not chrome.
ANSWERS = {
    "warning_signs": "Shouting late",
    "people_to_call": "Aunt Rosa 555-0101",
    "naloxone_place": "Kitchen drawer",
    "safe_place": "Rosa house",
}


@pytest.fixture
def world(app, reading_world):
    """The reading world at NOON, with Jordan's full name (on the share lists) and an admin."""
    app.config["NOW_OVERRIDE"] = NOON
    return reading_world(jordan_name="Jordan Rivera", admin=True)


def _body_words(body_html: str) -> list[str]:
    """The text pieces of a module's sanitized HTML, as a page shows them."""
    return [html.unescape(piece).strip() for piece in re.split(r"<[^>]+>", body_html)]


def data_strings(app) -> list[str]:
    """Everything the test world put in that is data, not chrome: people, the program and
    every module text in both languages (with each source split as the page shows it)."""
    with app.app_context():
        found = list(ANSWERS.values()) + ["Dinner", "Say less, kindly", "Say less"]
        found += i18n.LANGUAGES.values()  # the switch names each language in its own words
        for user in db.session.scalars(select(User)):
            found += [user.name, user.first_name, user.email]
        found += [program.name for program in db.session.scalars(select(Program))]
        found += module_texts()
        return [value for value in found if value]


def module_texts() -> list[str]:
    """Every module text in both languages, in the pieces a reading page shows (each source
    split in its words and its address)."""
    found = []
    texts = list(db.session.scalars(select(LearningModule)))
    texts += list(db.session.scalars(select(ModuleTranslation)))
    for text in texts:
        found += [text.title, text.summary, text.topic, text.reflection, text.exercise]
        found += text.key_points + _body_words(text.body_html)
        for words, address in learning.source_links(text.sources):
            found += [words, address]
        found += text.sources + text.body_markdown.splitlines()  # as its edit form shows
    return found


def _share_everything(client, auth, world):
    """Maria shares a safety plan, a rewritten message and a reflection with Jordan's
    therapist, who has assigned her the weekly sequence: every part of each page shows."""
    auth.login("lee@example.org")
    client.post(f"/learn/therapist/patients/{world['jordan']}/sequence", data={"family": "all"})
    auth.logout()
    auth.login("maria@example.org")
    share = str(world["jordan"])
    client.post("/learn/practice/safety_plan/new", data={**ANSWERS, "share": share})
    made = client.post(
        "/learn/practice/message/new",
        data={"title": "Dinner", "message": "Say less", "checked": ["brief"], "share": share},
    )
    message_id = int(made.headers["Location"].rsplit("/", 1)[1])
    client.post(
        f"/learn/practice/{message_id}",
        data={"title": "Dinner", "message": "Say less, kindly", "share": share},
    )
    client.post(
        f"/learn/modules/what-iop-is/progress?patient={world['jordan']}",
        data={"completed": "y", "reflection": "Dinner", "share": share},
    )
    auth.logout()
    return message_id


def _ids(app):
    with app.app_context():
        return {entry.kind: entry.id for entry in db.session.scalars(select(PracticeEntry))}


def _ours(page: str) -> str:
    """The page without the parts other areas own and test: the site header's menu
    (templates/_nav.html), the crisis numbers (templates/_crisis.html) and the summary
    of a form's errors (templates/_macros/forms.html)."""
    for owned in (
        r"<header class=\"site-header\">.*?</header>",
        r"<section class=\"card crisis\".*?</section>",
        r"<div class=\"error-summary\" role=\"alert\">\s*<p>Please check.*?</div>",
    ):
        page = re.sub(owned, "", page, flags=re.S)
    return page


def _assert_all_marked(client, paths, pseudo_locale, data):
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, path
        words = pseudo_locale(_ours(response.get_data(as_text=True)), *data)
        assert words == [], (path, " ".join(words))


def test_every_family_reading_and_practice_page_goes_through_gettext(
    app, client, auth, world, pseudo_locale
):
    _share_everything(client, auth, world)
    entries = _ids(app)
    auth.login("maria@example.org")
    paths = [
        "/learn/",
        "/learn/?q=zzzz",
        "/learn/modules/boundaries",
        f"/learn/modules/what-iop-is?patient={world['jordan']}",
        "/learn/practice/",
        *(f"/learn/practice/{kind}/new" for kind in ("before_after", "message", "rewards")),
        f"/learn/practice/{entries['safety_plan']}",
        f"/learn/practice/{entries['message']}",
        f"/learn/practice/{entries['safety_plan']}/card",
    ]
    _assert_all_marked(client, paths, pseudo_locale, data_strings(app))


def test_the_empty_library_and_practice_pages_go_through_gettext(
    app, client, auth, world, pseudo_locale
):
    auth.login("drew@example.org")
    _assert_all_marked(client, ["/learn/practice/"], pseudo_locale, data_strings(app))


def test_the_therapists_reading_pages_go_through_gettext(app, client, auth, world, pseudo_locale):
    _share_everything(client, auth, world)
    auth.login("lee@example.org")
    paths = [
        "/learn/therapist",
        f"/learn/therapist/patients/{world['jordan']}",
        "/learn/",
    ]
    _assert_all_marked(client, paths, pseudo_locale, data_strings(app))
    response = client.post(f"/learn/therapist/patients/{world['jordan']}/assign", data={})
    assert response.status_code == 400
    assert pseudo_locale(_ours(response.get_data(as_text=True)), *data_strings(app)) == []


def test_a_therapist_with_no_consented_family_sees_gettext_text(
    app, client, auth, world, pseudo_locale
):
    auth.login("patel@example.org")
    paths = ["/learn/therapist", f"/learn/therapist/patients/{world['casey']}"]
    _assert_all_marked(client, paths, pseudo_locale, data_strings(app))


def test_the_admin_module_pages_go_through_gettext(app, client, auth, world, pseudo_locale):
    auth.login("admin@example.org")
    module_id = world["modules"]["boundaries"]
    client.post(f"/learn/admin/{module_id}", data={"title": ""})  # a refused edit
    paths = ["/learn/admin", f"/learn/admin/{module_id}"]
    _assert_all_marked(client, paths, pseudo_locale, data_strings(app))
    with app.app_context():
        module = db.session.get(LearningModule, module_id)
        form = {
            "title": module.title,
            "summary": module.summary,
            "topic": module.topic,
            "order": module.order,
            "reading_minutes": module.reading_minutes,
            "key_points": "\n".join(module.key_points),
            "reflection": module.reflection,
            "exercise": module.exercise,
            "sources": "\n".join(module.sources),
            "body_markdown": module.body_markdown,
            "preview": "1",
        }
    preview = client.post(f"/learn/admin/{module_id}", data=form)
    assert pseudo_locale(_ours(preview.get_data(as_text=True)), *data_strings(app)) == []
    refused = client.post(f"/learn/admin/{module_id}", data={**form, "title": "", "save": "1"})
    assert refused.status_code == 400
    assert pseudo_locale(_ours(refused.get_data(as_text=True)), *data_strings(app)) == []


# --- In Spanish --------------------------------------------------------------------------------


def _speaks_spanish(app, email):
    with app.app_context():
        db.session.scalar(select(User).where(User.email == email)).locale = "es"
        db.session.commit()


def _spanish(slug):
    path = next((learning.CONTENT_DIR / "es").glob(f"*-{slug}.md"))
    return learning.parse_translation_file(path)


def test_a_spanish_reader_gets_the_spanish_module_in_spanish_chrome(app, client, auth, world):
    _speaks_spanish(app, "maria@example.org")
    auth.login("maria@example.org")
    page = client.get("/learn/modules/boundaries").get_data(as_text=True)
    spanish = _spanish("boundaries")
    assert '<html lang="es">' in page
    assert str(escape(spanish.title)) in page and str(escape(spanish.reflection)) in page
    for chrome in ("Puntos clave", "Fuentes", "Piénselo", "Pruebe esto", "Guardar"):
        assert chrome in page, chrome
    assert "Key points" not in page and "Boundaries you can keep" not in page


def test_the_library_lists_spanish_titles_for_a_spanish_reader(app, client, auth, world):
    _speaks_spanish(app, "maria@example.org")
    auth.login("maria@example.org")
    page = client.get("/learn/").get_data(as_text=True)
    assert '<html lang="es">' in page and "Lecturas" in page
    for slug in ("boundaries", "safety-and-crisis"):
        spanish = _spanish(slug)
        assert str(escape(spanish.title)) in page and str(escape(spanish.topic)) in page
    assert "Boundaries you can keep" not in page
    assert page.count("/learn/modules/") == len(world["modules"])


def test_a_spanish_reader_finds_a_module_by_its_spanish_title(app, client, auth, world):
    _speaks_spanish(app, "maria@example.org")
    auth.login("maria@example.org")
    spanish = _spanish("boundaries")
    word = spanish.title.split()[0]
    page = client.get("/learn/", query_string={"q": word}).get_data(as_text=True)
    assert "/learn/modules/boundaries" in page


def test_an_assigned_reading_shows_its_spanish_title(app, client, auth, world):
    auth.login("lee@example.org")
    client.post(
        f"/learn/therapist/patients/{world['jordan']}/assign",
        data={"family": str(world["maria"]), "modules": [str(world["modules"]["boundaries"])]},
    )
    auth.logout()
    _speaks_spanish(app, "maria@example.org")
    auth.login("maria@example.org")
    page = client.get("/learn/").get_data(as_text=True)
    assigned = page.split('id="assigned-heading"')[1].split("</section>")[0]
    assert str(escape(_spanish("boundaries").title)) in assigned
    assert "De su equipo de atención" in page


def test_practice_tools_and_the_safety_card_in_spanish(app, client, auth, world):
    _speaks_spanish(app, "maria@example.org")
    auth.login("maria@example.org")
    home = client.get("/learn/practice/").get_data(as_text=True)
    assert '<html lang="es">' in home and "Herramientas de práctica" in home
    made = client.post("/learn/practice/safety_plan/new", data=ANSWERS)
    card = client.get(made.headers["Location"] + "/card").get_data(as_text=True)
    assert "Plan de seguridad familiar" in card and "Kitchen drawer" in card


def test_the_therapist_pages_in_spanish(app, client, auth, world):
    _speaks_spanish(app, "lee@example.org")
    auth.login("lee@example.org")
    page = client.get(f"/learn/therapist/patients/{world['jordan']}").get_data(as_text=True)
    assert '<html lang="es">' in page and "Asignar lecturas" in page
    response = client.post(
        f"/learn/therapist/patients/{world['jordan']}/sequence", data={"family": "all"}
    )
    assert response.status_code == 302
    shown = client.get(response.location).get_data(as_text=True)
    assert "Se asignaron 12 lecturas. Se libera una cada semana." in shown
