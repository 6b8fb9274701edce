"""Reading pages through the test client: library, module page, assignment, progress, editing."""

import re

import pytest
from markupsafe import escape
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import (
    Assignment,
    AuditEvent,
    LearningModule,
    ModuleProgress,
    User,
)
from familylink.services import learning
from tests.factories import create_consent, set_after_hours_phone
from tests.moments import NOON
from tests.queries import count_rows


@pytest.fixture
def settings_override():
    return {"NOW_OVERRIDE": NOON}


@pytest.fixture
def world(reading_world):
    """Modules loaded; Dr. Lee's patient Jordan consents to Maria; Dr. Patel has Casey."""
    return reading_world(admin=True)


# --- Library and module pages ------------------------------------------------------------------


def test_the_library_lists_modules_by_topic(client, auth, world):
    auth.login("maria@example.org")
    page = client.get("/learn/").get_data(as_text=True)
    for title in ("Helping versus enabling", "Boundaries you can keep", "Safety and crisis help"):
        assert title in page
    assert page.count("/learn/modules/") == len(world["modules"])


def test_a_spanish_locale_shows_the_spanish_module(app, client, auth, world):
    # Each person's own language is chosen (users.locale), not the app's default.
    with app.app_context():
        db.session.get(User, world["maria"]).locale = "es"
        db.session.commit()
    auth.login("maria@example.org")
    spanish = learning.parse_translation_file(learning.CONTENT_DIR / "es" / "06-boundaries.md")
    page = client.get("/learn/modules/boundaries").get_data(as_text=True)
    assert str(escape(spanish.title)) in page
    assert str(escape(spanish.key_points[0])) in page
    assert "Boundaries you can keep" not in page


def test_an_english_locale_shows_the_english_module(client, auth, world):
    auth.login("maria@example.org")
    page = client.get("/learn/modules/boundaries").get_data(as_text=True)
    assert "Boundaries you can keep" in page


def test_library_search_narrows_the_list(client, auth, world):
    auth.login("maria@example.org")
    page = client.get("/learn/?q=boundar").get_data(as_text=True)
    assert "/learn/modules/boundaries" in page
    assert "/learn/modules/what-iop-is" not in page


def test_a_search_with_no_match_says_so(client, auth, world):
    auth.login("maria@example.org")
    page = client.get("/learn/?q=zzzz").get_data(as_text=True)
    assert "Nothing matches" in page


def _words_asked(client, path, monkeypatch) -> tuple[str, list[str]]:
    """The page at `path` (asked once before, so nothing is first-time work), and every
    message it looked up in the catalogue, once per lookup."""
    import babel.support

    client.get(path)
    asked = []
    for catalogue in (babel.support.NullTranslations, babel.support.Translations):

        def counted(self, message, original=catalogue.ugettext):
            asked.append(message)
            return original(self, message)

        monkeypatch.setattr(catalogue, "ugettext", counted)
    return client.get(path).get_data(as_text=True), asked


def test_a_fields_hint_is_translated_once_and_tied_to_its_field(
    app, client, auth, world, monkeypatch
):
    """The reflection's hint is a lazy string: written out and named by aria-describedby,
    it is looked up in the catalogue once, not at each mention (issue 19)."""
    hint = "Only you can read this, unless you share it below."
    auth.login("maria@example.org")
    page, asked = _words_asked(
        client, f"/learn/modules/{next(iter(world['modules']))}", monkeypatch
    )
    assert f'<p class="hint" id="reflection-hint">{hint}</p>' in page
    assert re.search(r'<textarea[^>]*aria-describedby="reflection-hint"', page)
    assert asked.count(hint) == 1


@pytest.mark.parametrize("page", ["module", "/learn/practice/before_after/new"])
def test_the_share_fields_nobody_is_translated_once(app, client, auth, world, monkeypatch, page):
    """ "Nobody: keep it private" was a lazy string, looked up twice as WTForms wrote its
    option (once to test the label, once to escape it)."""
    nobody = "Nobody: keep it private"
    path = f"/learn/modules/{next(iter(world['modules']))}" if page == "module" else page
    auth.login("maria@example.org")
    shown, asked = _words_asked(client, path, monkeypatch)
    assert re.search(rf'<option[^>]* value="">{nobody}</option>', shown)
    assert asked.count(nobody) == 1


def test_the_module_page_has_every_part_and_the_crisis_resources(app, client, auth, world):
    auth.login("maria@example.org")
    response = client.get("/learn/modules/boundaries")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    with app.app_context():
        module = learning.published_module("boundaries")
        for part in (module.key_points[0], module.reflection, module.sources[0]):
            assert str(part).replace("'", "&#39;").replace('"', "&#34;") in page
    assert "988" in page and "1-800-662-4357" in page and 'href="tel:911"' in page
    assert "Key points" in page and "Try this" in page and "Sources" in page


@pytest.mark.parametrize("locale", ["en", "es"])
def test_the_module_page_reads_its_text_once_without_its_markdown(
    app, client, auth, world, count_queries, locale
):
    """One statement for the module and its text in the reader's language, and only what the
    page shows: the Markdown source is the edit form's, never a reader's page's."""
    with app.app_context():
        db.session.get(User, world["maria"]).locale = locale
        db.session.commit()
    auth.login("maria@example.org")
    client.get("/learn/modules/boundaries")  # opened: the progress row written
    with count_queries() as counter:
        assert client.get("/learn/modules/boundaries").status_code == 200
    texts = [s for s in counter.statements if "learning_modules" in s or "module_translations" in s]
    assert len(texts) == 1
    assert not any("body_markdown" in s for s in counter.statements)


@pytest.mark.parametrize(
    "slug",
    ["safety-and-crisis", "withdrawal-can-be-dangerous", "suicide-warning-signs-and-a-safer-home"],
)
def test_references_link_to_a_numbered_sources_list(app, client, auth, world, slug):
    auth.login("maria@example.org")
    page = client.get(f"/learn/modules/{slug}").get_data(as_text=True)
    with app.app_context():
        count = len(learning.published_module(slug).sources)
    assert '<ol class="sources">' in page
    for n in range(1, count + 1):
        assert f'id="source-{n}"' in page
        assert f'<a href="#source-{n}" rel="noopener noreferrer">[{n}]</a>' in page
    assert f'id="source-{count + 1}"' not in page
    if slug == "safety-and-crisis":  # a source with a web address links to it
        assert '<a href="https://988lifeline.org/get-help/what-to-expect"' in page


def test_the_after_hours_number_shows_on_a_module_page_only_when_set(app, client, auth, world):
    auth.login("maria@example.org")
    assert "crisis-after-hours" not in client.get("/learn/modules/safety-and-crisis").get_data(
        as_text=True
    )
    set_after_hours_phone(app, "555-201-3344")
    page = client.get("/learn/modules/safety-and-crisis").get_data(as_text=True)
    assert 'id="crisis-after-hours"' in page and 'href="tel:+15552013344"' in page


def test_opening_a_module_is_recorded(app, client, auth, world):
    auth.login("maria@example.org")
    client.get("/learn/modules/boundaries")
    assert count_rows(app, ModuleProgress, ModuleProgress.opened_at.is_not(None)) == 1


def test_a_patient_name_in_the_reflection_share_list_is_escaped(app, client, auth, world):
    with app.app_context():
        db.session.get(User, world["jordan"]).name = "<b>Jo</b>"
        db.session.commit()
    auth.login("maria@example.org")
    page = client.get("/learn/modules/boundaries").get_data(as_text=True)
    assert "&lt;b&gt;Jo&lt;/b&gt;" in page and "<b>Jo</b>" not in page


def test_an_unknown_module_is_404(client, auth, world):
    auth.login("maria@example.org")
    assert client.get("/learn/modules/no-such-thing").status_code == 404


def test_patients_see_no_reading_pages(client, auth, world):
    auth.login("jordan@example.org")
    assert client.get("/learn/").status_code == 404
    assert client.get("/learn/modules/boundaries").status_code == 404
    assert client.get(f"/learn/therapist/patients/{world['jordan']}").status_code == 404


def test_signed_out_visitors_are_sent_to_sign_in(client, world):
    response = client.get("/learn/")
    assert response.status_code == 302 and "/login" in response.location


@pytest.mark.parametrize(
    ("email", "label", "target"),
    [
        ("maria@example.org", "Reading", "/learn/"),
        ("lee@example.org", "Family reading", "/learn/therapist"),
        ("admin@example.org", "Modules", "/learn/admin"),
    ],
)
def test_each_role_has_its_reading_link(client, auth, world, email, label, target):
    auth.login(email)
    page = client.get("/", follow_redirects=True).get_data(as_text=True)
    assert f'<a href="{target}">{label}</a>' in page


# --- Assignment --------------------------------------------------------------------------------


def test_a_therapist_assigns_a_module_with_a_note(app, client, auth, world):
    auth.login("lee@example.org")
    response = client.post(
        f"/learn/therapist/patients/{world['jordan']}/assign",
        data={
            "family": str(world["maria"]),
            "modules": [str(world["modules"]["boundaries"])],
            "note": "For our next session",
        },
    )
    assert response.status_code == 302
    assert count_rows(app, Assignment, Assignment.family_user_id == world["maria"]) == 1
    auth.logout()
    auth.login("maria@example.org")
    page = client.get("/learn/").get_data(as_text=True)
    assert "From your care team" in page and "For our next session" in page


@pytest.mark.parametrize(
    ("patient", "family"),
    [("jordan", "drew"), ("casey", "maria"), ("jordan", "jordan")],
    ids=["unconsented-family", "another-therapists-patient", "not-family"],
)
def test_assigning_outside_ones_own_consented_families_is_404(
    app, client, auth, world, patient, family
):
    auth.login("lee@example.org")
    response = client.post(
        f"/learn/therapist/patients/{world[patient]}/assign",
        data={"family": str(world[family]), "modules": [str(world["modules"]["boundaries"])]},
    )
    assert response.status_code == 404
    assert count_rows(app, Assignment) == 0


def test_another_therapists_patient_page_is_404(client, auth, world):
    auth.login("lee@example.org")
    assert client.get(f"/learn/therapist/patients/{world['casey']}").status_code == 404


def test_assigning_nothing_shows_a_message_beside_the_field(app, client, auth, world):
    auth.login("lee@example.org")
    response = client.post(
        f"/learn/therapist/patients/{world['jordan']}/assign",
        data={"family": str(world["maria"])},
    )
    assert response.status_code == 400
    assert "Choose at least one module." in response.get_data(as_text=True)
    assert count_rows(app, Assignment) == 0


def test_choosing_nobody_shows_a_message_beside_the_field(app, client, auth, world):
    auth.login("lee@example.org")
    response = client.post(f"/learn/therapist/patients/{world['jordan']}/sequence", data={})
    assert response.status_code == 400
    assert "Choose who should read it." in response.get_data(as_text=True)
    assert count_rows(app, Assignment) == 0


def test_the_weekly_sequence_assigns_everything_and_releases_one(app, client, auth, world):
    auth.login("lee@example.org")
    response = client.post(
        f"/learn/therapist/patients/{world['jordan']}/sequence", data={"family": "all"}
    )
    assert response.status_code == 302
    assert count_rows(app, Assignment) == len(world["modules"])
    assert count_rows(app, Assignment, Assignment.released_at.is_not(None)) == 1


# --- Progress and private reflections ----------------------------------------------------------


def _assign_boundaries(client, auth, world):
    auth.login("lee@example.org")
    client.post(
        f"/learn/therapist/patients/{world['jordan']}/assign",
        data={"family": str(world["maria"]), "modules": [str(world["modules"]["boundaries"])]},
    )
    auth.logout()


def _reflect(client, auth, world, share: bool):
    """Maria's notes on the reading about Jordan (opened from its assignment)."""
    auth.login("maria@example.org")
    data = {"completed": "y", "reflection": "I keep saying yes when I mean no."}
    data["share"] = str(world["jordan"]) if share else ""
    response = client.post(
        f"/learn/modules/boundaries/progress?patient={world['jordan']}", data=data
    )
    assert response.status_code == 302
    auth.logout()


def _therapist_page(client, auth, world):
    auth.login("lee@example.org")
    page = client.get(f"/learn/therapist/patients/{world['jordan']}").get_data(as_text=True)
    auth.logout()
    return page


def test_the_therapist_sees_completion_but_not_a_private_reflection(client, auth, world):
    _assign_boundaries(client, auth, world)
    _reflect(client, auth, world, share=False)
    page = _therapist_page(client, auth, world)
    row = page.split("Boundaries you can keep")[1].split("</tr>")[0]
    assert row.count("not yet") == 0  # opened and completed both have dates
    assert "I keep saying yes" not in page


def test_the_therapist_sees_a_shared_reflection(client, auth, world):
    _assign_boundaries(client, auth, world)
    _reflect(client, auth, world, share=True)
    assert "I keep saying yes" in _therapist_page(client, auth, world)


def test_the_patient_never_sees_a_reflection(client, auth, world):
    _assign_boundaries(client, auth, world)
    _reflect(client, auth, world, share=True)
    auth.login("jordan@example.org")
    for path in ("/patient/", "/learn/", f"/learn/therapist/patients/{world['jordan']}"):
        assert "I keep saying yes" not in client.get(path).get_data(as_text=True)


def test_the_family_member_sees_their_own_reflection(client, auth, world):
    _reflect(client, auth, world, share=False)
    auth.login("maria@example.org")
    page = client.get(f"/learn/modules/boundaries?patient={world['jordan']}").get_data(as_text=True)
    assert "I keep saying yes" in page and "You finished this on" in page


def test_the_therapist_view_is_audited(app, client, auth, world):
    _therapist_page(client, auth, world)
    assert (
        count_rows(
            app,
            AuditEvent,
            AuditEvent.action == "learning.progress_viewed",
            AuditEvent.patient_id == world["jordan"],
        )
        == 1
    )


def test_a_too_long_reflection_is_refused_beside_the_field(app, client, auth, world):
    auth.login("maria@example.org")
    response = client.post("/learn/modules/boundaries/progress", data={"reflection": "x" * 6000})
    assert response.status_code == 400
    assert "Use at most 5000 characters." in response.get_data(as_text=True)
    assert count_rows(app, ModuleProgress, ModuleProgress.reflection.is_not(None)) == 0


# --- Readings belong to (family member, patient, module): issue 16 ----------------------------

SECRET = "I worry about the holidays."


def _consent_casey_to_maria(app, world):
    """Maria is linked to two patients of two therapists: Jordan (Dr. Lee), Casey (Dr. Patel)."""
    with app.app_context():
        casey, maria = db.session.get(User, world["casey"]), db.session.get(User, world["maria"])
        create_consent(casey, maria, now=NOON, relationship="Aunt")
        db.session.commit()


def _page_of(client, auth, email, patient_id):
    auth.login(email)
    page = client.get(f"/learn/therapist/patients/{patient_id}").get_data(as_text=True)
    auth.logout()
    return page


def test_a_reflection_shared_about_one_patient_never_reaches_the_other_patients_therapist(
    app, client, auth, world
):
    _consent_casey_to_maria(app, world)
    _assign_boundaries(client, auth, world)  # for Jordan only
    auth.login("maria@example.org")
    about_jordan = f"?patient={world['jordan']}"
    assert client.get(f"/learn/modules/boundaries{about_jordan}").status_code == 200
    response = client.post(
        f"/learn/modules/boundaries/progress{about_jordan}",
        data={"completed": "y", "reflection": SECRET, "share": str(world["jordan"])},
    )
    assert response.status_code == 302
    auth.logout()
    casey_page = _page_of(client, auth, "patel@example.org", world["casey"])
    assert SECRET not in casey_page
    assert "<td>Boundaries you can keep" not in casey_page
    assert SECRET in _page_of(client, auth, "lee@example.org", world["jordan"])


def test_the_assigned_reading_opens_about_its_patient(app, client, auth, world):
    _assign_boundaries(client, auth, world)
    auth.login("maria@example.org")
    library = client.get("/learn/").get_data(as_text=True)
    assert f"/learn/modules/boundaries?patient={world['jordan']}" in library
    client.get(f"/learn/modules/boundaries?patient={world['jordan']}")
    assert count_rows(app, ModuleProgress, ModuleProgress.patient_id == world["jordan"]) == 1
    auth.logout()
    row = _page_of(client, auth, "lee@example.org", world["jordan"]).split(
        "Boundaries you can keep"
    )[1]
    assert row.split("</tr>")[0].count("not yet") == 1  # opened, not completed


def test_a_reading_of_ones_own_asks_whose_therapist_may_read_the_reflection(
    app, client, auth, world
):
    _consent_casey_to_maria(app, world)
    _assign_boundaries(client, auth, world)
    auth.login("maria@example.org")
    page = client.get("/learn/modules/boundaries").get_data(as_text=True)
    select = page.split('name="share"')[1].split("</select>")[0]
    options = re.findall(r'value="(\d*)"', select)
    assert options[0] == "" and sorted(options[1:]) == sorted(
        [str(world["jordan"]), str(world["casey"])]
    )
    # Kept private by default: it reaches nobody, and it is not Jordan's reading either.
    client.post("/learn/modules/boundaries/progress", data={"reflection": SECRET, "share": ""})
    response = client.post(
        "/learn/modules/boundaries/progress",
        data={"reflection": SECRET, "share": str(world["casey"])},
    )
    assert response.status_code == 302
    assert response.location.endswith(f"/learn/modules/boundaries?patient={world['casey']}")
    auth.logout()
    assert SECRET in _page_of(client, auth, "patel@example.org", world["casey"])
    assert SECRET not in _page_of(client, auth, "lee@example.org", world["jordan"])
    assert count_rows(app, ModuleProgress) == 1  # the notes moved; nothing left behind


def test_a_private_reading_of_ones_own_reaches_no_therapist(app, client, auth, world):
    _consent_casey_to_maria(app, world)
    auth.login("maria@example.org")
    client.post(
        "/learn/modules/boundaries/progress",
        data={"completed": "y", "reflection": SECRET, "share": ""},
    )
    auth.logout()
    for email, patient in (("lee@example.org", "jordan"), ("patel@example.org", "casey")):
        page = _page_of(client, auth, email, world[patient])
        assert SECRET not in page and "<td>Boundaries you can keep" not in page


@pytest.mark.parametrize("share", ["casey", "drew", "12x"])
def test_sharing_with_someone_not_offered_shows_a_message_and_changes_nothing(
    app, client, auth, world, share
):
    """Maria is linked to Jordan only; on Jordan's reading only Jordan's therapist is offered."""
    auth.login("maria@example.org")
    response = client.post(
        f"/learn/modules/boundaries/progress?patient={world['jordan']}",
        data={"reflection": SECRET, "share": str(world.get(share, share))},
    )
    assert response.status_code == 400
    assert "Choose a therapist from the list, or nobody." in response.get_data(as_text=True)
    assert count_rows(app, ModuleProgress, ModuleProgress.reflection.is_not(None)) == 0


def test_a_reading_about_a_patient_without_consent_is_404(app, client, auth, world):
    auth.login("maria@example.org")
    assert client.get(f"/learn/modules/boundaries?patient={world['casey']}").status_code == 404
    response = client.post(
        f"/learn/modules/boundaries/progress?patient={world['casey']}",
        data={"reflection": SECRET, "share": str(world["casey"])},
    )
    assert response.status_code == 404
    assert count_rows(app, ModuleProgress) == 0


# --- Admin editing -----------------------------------------------------------------------------

MALICIOUS = (
    "## Safe heading\n\n<script>alert('x')</script>\n\n"
    '<img src=x onerror="alert(1)">\n\n'
    '<a href="javascript:alert(2)">bad</a> and [worse](javascript:alert(3))\n'
)


def _form(app, slug, **changes):
    with app.app_context():
        m = learning.published_module(slug)
        data = {
            "title": m.title,
            "summary": m.summary,
            "topic": m.topic,
            "order": m.order,
            "reading_minutes": m.reading_minutes,
            "key_points": "\n".join(m.key_points),
            "reflection": m.reflection,
            "exercise": m.exercise,
            "sources": "\n".join(m.sources),
            "body_markdown": m.body_markdown,
            "published": "y",
        }
    data.update(changes)
    return data


def _no_active_content(page: str) -> None:
    assert "<script" not in page.lower()
    assert not re.search(r"<[^>]+\son\w+\s*=", page, re.IGNORECASE)
    assert not re.search(r"href\s*=\s*[\"']?\s*javascript:", page, re.IGNORECASE)


def test_an_admin_edit_never_puts_scripts_on_a_page(app, client, auth, world):
    module_id = world["modules"]["boundaries"]
    auth.login("admin@example.org")
    response = client.post(
        f"/learn/admin/{module_id}", data=_form(app, "boundaries", body_markdown=MALICIOUS)
    )
    assert response.status_code == 302
    auth.logout()
    auth.login("maria@example.org")
    page = client.get("/learn/modules/boundaries").get_data(as_text=True)
    assert "<h2>Safe heading</h2>" in page
    _no_active_content(page)


def test_preview_shows_sanitized_html_and_saves_nothing(app, client, auth, world):
    module_id = world["modules"]["boundaries"]
    auth.login("admin@example.org")
    response = client.post(
        f"/learn/admin/{module_id}",
        data={**_form(app, "boundaries", body_markdown=MALICIOUS), "preview": "1"},
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "Preview (not saved yet)" in page
    assert "<h2>Safe heading</h2>" in page
    preview = page.split("Preview (not saved yet)")[1].split("</section>")[0]
    _no_active_content(preview)
    with app.app_context():
        assert len(db.session.get(LearningModule, module_id).versions) == 1


def test_a_bad_edit_shows_the_message_and_changes_nothing(app, client, auth, world):
    module_id = world["modules"]["boundaries"]
    auth.login("admin@example.org")
    response = client.post(
        f"/learn/admin/{module_id}", data=_form(app, "boundaries", key_points="only one")
    )
    assert response.status_code == 400
    assert "Give 3 to 5 key points" in response.get_data(as_text=True)
    with app.app_context():
        assert len(db.session.get(LearningModule, module_id).versions) == 1


def test_an_earlier_version_can_be_restored(app, client, auth, world):
    module_id = world["modules"]["boundaries"]
    auth.login("admin@example.org")
    original = _form(app, "boundaries")["title"]
    client.post(f"/learn/admin/{module_id}", data=_form(app, "boundaries", title="New title"))
    with app.app_context():
        first = min(db.session.get(LearningModule, module_id).versions, key=lambda v: v.number)
        first_id = first.id
    page = client.get(f"/learn/admin/{module_id}").get_data(as_text=True)
    assert "Restore version 1" in page
    response = client.post(f"/learn/admin/{module_id}/versions/{first_id}/restore")
    assert response.status_code == 302
    with app.app_context():
        module = db.session.get(LearningModule, module_id)
        assert module.title == original and len(module.versions) == 3


def test_only_admins_edit_modules(client, auth, world):
    auth.login("lee@example.org")
    assert client.get(f"/learn/admin/{world['modules']['boundaries']}").status_code == 404


# --- Commands ----------------------------------------------------------------------------------


def test_learn_load_is_idempotent(runner):
    first = runner.invoke(args=["learn", "load"])
    second = runner.invoke(args=["learn", "load"])
    count = len(learning.content_files())
    assert f"{count} new" in first.output
    assert f"0 new, 0 updated, {count} unchanged" in second.output


def test_learn_release_releases_what_is_due(app, runner, world):
    with app.app_context():
        lee = db.session.scalar(select(User).where(User.email == "lee@example.org"))
        learning.apply_sequence(
            therapist=lee, patient_id=world["jordan"], family_user_id=world["maria"], now=NOON
        )
        db.session.commit()
    result = runner.invoke(args=["learn", "release", "--now", "2026-11-24T17:00"])
    assert "Released 1 reading." in result.output
    assert _released_to_maria(app, world) == 2


def test_the_mail_worker_commits_after_each_sweep(app, runner, world):
    """A sweep that fails after the release sweep does not undo what it released."""

    def failing_sweep(now):
        raise RuntimeError("a later sweep failed")

    sweeps = app.extensions["familylink_sweeps"]
    sweeps.insert(sweeps.index(learning.release_due) + 1, failing_sweep)
    with app.app_context():
        lee = db.session.scalar(select(User).where(User.email == "lee@example.org"))
        learning.apply_sequence(
            therapist=lee, patient_id=world["jordan"], family_user_id=world["maria"], now=NOON
        )
        db.session.commit()
    result = runner.invoke(args=["mail", "send", "--now", "2026-11-24T17:00"])
    assert result.exit_code == 1
    assert "these sweeps failed" in result.output and "failing_sweep" in result.output
    assert _released_to_maria(app, world) == 2


def _released_to_maria(app, world) -> int:
    """Counted in a fresh app context: only what was committed."""
    return count_rows(
        app,
        Assignment,
        Assignment.family_user_id == world["maria"],
        Assignment.released_at.is_not(None),
    )


@pytest.mark.parametrize(
    ("modules", "status"), [(["boundaries"], 302), ([], 400)], ids=["assigned", "refused"]
)
def test_an_assignment_asks_the_gate_once_and_passes_its_answer_on(
    client, auth, world, monkeypatch, modules, status
):
    from familylink.services import access

    asked_afresh = []
    gate = access.therapist_patient

    def counted(therapist, patient_id, **kwargs):
        if kwargs.get("opened") is None:
            asked_afresh.append(patient_id)
        return gate(therapist, patient_id, **kwargs)

    monkeypatch.setattr(access, "therapist_patient", counted)
    auth.login("lee@example.org")
    response = client.post(
        f"/learn/therapist/patients/{world['jordan']}/assign",
        data={
            "family": str(world["maria"]),
            "modules": [str(world["modules"][m]) for m in modules],
        },
    )
    assert response.status_code == status
    assert asked_afresh == [world["jordan"]]


def test_a_refused_assignment_reads_the_family_with_consent_once(
    client, auth, world, count_queries
):
    """The family the therapist may assign to is read once, by the route, for the service
    and for the refused form's page alike (it was read by each)."""
    auth.login("lee@example.org")
    with count_queries() as counter:
        response = client.post(
            f"/learn/therapist/patients/{world['jordan']}/assign",
            data={"family": str(world["maria"]), "modules": []},
        )
    assert response.status_code == 400
    assert "Choose at least one module." in response.get_data(as_text=True)
    assert sum("FROM consent_records" in s for s in counter.statements) == 1
