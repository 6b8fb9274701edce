"""Learning rules: loading, sanitizing, assignment access, weekly release, private reflections."""

import shutil
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from sqlalchemy import func, select

from familylink.extensions import db
from familylink.models import (
    Assignment,
    AuditEvent,
    LearningModule,
    ModuleVersion,
    OutboxEmail,
    OutboxStatus,
    Role,
)
from familylink.services import consent, learning
from familylink.services.errors import NotFound, ValidationError
from tests.factories import create_consent

ATTACKS = (
    "Hello <script>alert(1)</script> there.\n\n"
    '<img src="x" onerror="alert(2)">\n\n'
    '<a href="javascript:alert(3)" onclick="alert(4)">click</a>\n\n'
    "[markdown link](javascript:alert(5))\n\n"
    '<p style="color:red" onmouseover="alert(6)">styled</p>\n\n'
    '<iframe src="https://evil.example"></iframe>\n\n'
    "[safe](https://988lifeline.org)"
)


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend((name, (value or "").strip().lower()) for name, value in attrs)


def assert_harmless(html: str) -> None:
    """No script or frame element, no event handler or style, no javascript: URL."""
    parsed = _Tags()
    parsed.feed(html)
    assert not {"script", "iframe", "img", "style"} & set(parsed.tags)
    assert not [name for name, _ in parsed.attrs if name.startswith("on") or name == "style"]
    assert not [
        v
        for name, v in parsed.attrs
        if name in {"href", "src"}
        and ":" in v.split("/")[0]
        and not v.startswith(("http:", "https:", "mailto:", "tel:"))
    ]
    assert "alert(1)" not in html  # the script's content is gone too


@pytest.fixture
def modules(app_ctx, now):
    learning.load_modules(now=now)
    return learning.all_modules()


@pytest.fixture
def people(create_user, now):
    """Dr. A with patient P; F consented by P; G linked to nobody; Dr. B with patient Q."""
    therapist = create_user(Role.THERAPIST)
    patient = create_user(Role.PATIENT, therapist=therapist)
    family = create_user(Role.FAMILY)
    stranger = create_user(Role.FAMILY)
    other_therapist = create_user(Role.THERAPIST)
    other_patient = create_user(Role.PATIENT, therapist=other_therapist)
    create_consent(patient, family, now=now)
    return {
        "therapist": therapist,
        "patient": patient,
        "family": family,
        "stranger": stranger,
        "other_therapist": other_therapist,
        "other_patient": other_patient,
    }


# --- Loading -----------------------------------------------------------------------------------


def test_load_creates_each_module_with_a_first_version(modules):
    assert len(modules) >= 10
    assert all(len(m.versions) == 1 and m.versions[0].source == "file" for m in modules)


def test_loading_again_changes_nothing(modules, now):
    report = learning.load_modules(now=now)
    assert report.created == [] and report.updated == []
    assert db.session.scalar(select(func.count(ModuleVersion.id))) == len(modules)


def test_a_changed_file_becomes_a_new_version(app_ctx, tmp_path, now):
    for path in learning.content_files():
        shutil.copy(path, tmp_path / path.name)
    learning.load_modules(now=now, directory=tmp_path)
    changed = tmp_path / "03-helping-vs-enabling.md"
    changed.write_text(changed.read_text().replace("title: ", "title: Revised ", 1))
    report = learning.load_modules(now=now, directory=tmp_path)
    assert report.updated == ["helping-vs-enabling"] and report.created == []
    module = learning.published_module("helping-vs-enabling")
    assert module.title.startswith("Revised ")
    assert [v.number for v in module.versions] == [2, 1]


def test_a_broken_file_is_refused_before_anything_changes(app_ctx, tmp_path, now):
    (tmp_path / "01-x.md").write_text("---\nslug: x\ntitle: X\n---\nbody\n")
    with pytest.raises(ValidationError, match="01-x.md: missing"):
        learning.load_modules(now=now, directory=tmp_path)
    assert db.session.scalar(select(func.count(LearningModule.id))) == 0


def test_file_content_is_rendered_through_the_sanitizer(modules):
    module = learning.published_module("helping-vs-enabling")
    assert "<h2>" in module.body_html
    assert_harmless(module.body_html)


# --- Sanitizing and editing --------------------------------------------------------------------


def test_render_markdown_removes_scripts_handlers_and_javascript_links():
    html = learning.render_markdown(ATTACKS)
    assert_harmless(html)
    assert '<a href="https://988lifeline.org" rel="noopener noreferrer">safe</a>' in html


def _edit(module, **changes):
    text = learning.ModuleText(
        slug=module.slug,
        title=module.title,
        summary=module.summary,
        topic=module.topic,
        order=module.order,
        reading_minutes=module.reading_minutes,
        key_points=list(module.key_points),
        reflection=module.reflection,
        exercise=module.exercise,
        sources=list(module.sources),
        body_markdown=module.body_markdown,
    )
    for name, value in changes.items():
        setattr(text, name, value)
    return text


def test_an_admin_edit_is_sanitized_and_kept_as_a_version(modules, create_user, now):
    admin = create_user(Role.ADMIN)
    module = modules[0]
    version = learning.save_module(
        module, _edit(module, body_markdown=ATTACKS), actor=admin, now=now
    )
    assert version.number == 2 and version.created_by_id == admin.id
    assert_harmless(module.body_html)


def test_an_edit_needs_three_to_five_key_points(modules, create_user, now):
    admin = create_user(Role.ADMIN)
    with pytest.raises(ValidationError) as error:
        learning.save_module(
            modules[0], _edit(modules[0], key_points=["one"]), actor=admin, now=now
        )
    assert error.value.field == "key_points"


def test_restoring_brings_back_the_earlier_text_as_a_new_version(modules, create_user, now):
    admin = create_user(Role.ADMIN)
    module = modules[0]
    first_title = module.title
    learning.save_module(module, _edit(module, title="Changed"), actor=admin, now=now)
    first = min(module.versions, key=lambda v: v.number)
    version = learning.restore_version(module, first.id, actor=admin, now=now)
    assert module.title == first_title and version.number == 3 and version.source == "restore"


def test_a_version_of_another_module_cannot_be_restored(modules, create_user, now):
    admin = create_user(Role.ADMIN)
    with pytest.raises(NotFound):
        learning.restore_version(modules[0], modules[1].versions[0].id, actor=admin, now=now)


# --- Library -----------------------------------------------------------------------------------


def test_library_groups_published_modules_by_topic(modules):
    grouped = learning.library()
    assert sum(len(v) for v in grouped.values()) == len(modules)


def test_library_search_matches_titles_and_summaries_case_insensitively(modules):
    found = [m.slug for ms in learning.library("BOUNDARIES").values() for m in ms]
    assert "boundaries" in found
    assert "what-iop-is" not in found


def test_library_search_takes_wildcards_literally(modules):
    assert learning.library("%") == {}


def test_unpublished_modules_are_not_in_the_library(modules):
    modules[0].published = False
    db.session.flush()
    assert modules[0].slug not in [m.slug for ms in learning.library().values() for m in ms]
    with pytest.raises(NotFound):
        learning.published_module(modules[0].slug)


# --- Assignment access -------------------------------------------------------------------------


def test_a_therapist_assigns_to_a_consented_family_member(modules, people, now):
    made = learning.assign_modules(
        therapist=people["therapist"],
        patient_id=people["patient"].id,
        family_user_id=people["family"].id,
        module_ids=[modules[2].id],
        note="Have a look before Thursday.",
        now=now,
    )
    assert [(a.family_user_id, a.released_at) for a in made] == [(people["family"].id, now)]


def test_assigning_to_everyone_means_only_consented_family(modules, people, create_user, now):
    revoked_later = create_user(Role.FAMILY)
    create_consent(people["patient"], revoked_later, now=now, expires_at=now - timedelta(hours=1))
    made = learning.assign_modules(
        therapist=people["therapist"],
        patient_id=people["patient"].id,
        family_user_id=None,
        module_ids=[modules[0].id],
        note=None,
        now=now,
    )
    assert {a.family_user_id for a in made} == {people["family"].id}


@pytest.mark.parametrize(
    ("therapist", "patient", "family"),
    [
        ("therapist", "patient", "stranger"),  # not consented
        ("other_therapist", "patient", "family"),  # someone else's patient
        ("therapist", "other_patient", "family"),  # not this therapist's patient
        ("therapist", "family", "family"),  # not a patient at all
    ],
)
def test_anyone_else_is_not_found(modules, people, therapist, patient, family, now):
    with pytest.raises(NotFound):
        learning.assign_modules(
            therapist=people[therapist],
            patient_id=people[patient].id,
            family_user_id=people[family].id,
            module_ids=[modules[0].id],
            note=None,
            now=now,
        )
    assert db.session.scalar(select(func.count(Assignment.id))) == 0


def test_assigning_the_same_module_twice_adds_nothing(modules, people, now):
    args = dict(
        therapist=people["therapist"],
        patient_id=people["patient"].id,
        family_user_id=people["family"].id,
        module_ids=[modules[0].id],
        note=None,
        now=now,
    )
    learning.assign_modules(**args)
    assert learning.assign_modules(**args) == []


def test_the_assignment_email_is_neutral_and_tied_to_the_patient(modules, people, now):
    learning.assign_modules(
        therapist=people["therapist"],
        patient_id=people["patient"].id,
        family_user_id=people["family"].id,
        module_ids=[modules[0].id],
        note="Private note",
        now=now,
    )
    email = db.session.scalar(select(OutboxEmail).where(OutboxEmail.kind == "module_assigned"))
    assert email.subject == "New reading from your care team"
    assert email.patient_id == people["patient"].id
    everything = f"{email.subject} {email.text_body} {email.html_body}".lower()
    assert modules[0].title.lower() not in everything
    assert "private note" not in everything
    for word in ("addiction", "substance", "rehab", "recovery", "treatment", "iop", "detox"):
        assert word not in everything
    assert people["patient"].name.split()[-1].lower() not in everything


def test_assignments_are_audited_with_the_patient(modules, people, now):
    learning.assign_modules(
        therapist=people["therapist"],
        patient_id=people["patient"].id,
        family_user_id=people["family"].id,
        module_ids=[modules[0].id],
        note=None,
        now=now,
    )
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "learning.assigned"))
    assert (event.actor_id, event.patient_id) == (people["therapist"].id, people["patient"].id)


# --- Weekly sequence ---------------------------------------------------------------------------


def _sequence(people, now):
    return learning.apply_sequence(
        therapist=people["therapist"],
        patient_id=people["patient"].id,
        family_user_id=people["family"].id,
        now=now,
    )


def _released(people):
    return db.session.scalar(
        select(func.count(Assignment.id)).where(
            Assignment.family_user_id == people["family"].id, Assignment.released_at.is_not(None)
        )
    )


def test_the_sequence_releases_one_module_a_week_from_the_link_date(modules, people, now):
    linked_at = now - timedelta(days=1)  # create_consent links the day before
    made = _sequence(people, now)
    assert [a.release_at for a in made] == [
        linked_at + i * learning.WEEK for i in range(len(modules))
    ]
    assert _released(people) == 1
    assert learning.release_due(linked_at + timedelta(days=7) - timedelta(seconds=1)).released == []
    assert len(learning.release_due(linked_at + timedelta(days=7)).released) == 1
    assert _released(people) == 2
    assert learning.release_due(linked_at + timedelta(days=7)).released == []


def test_each_release_queues_one_email(modules, people, now):
    _sequence(people, now)
    learning.release_due(now=now + timedelta(days=7))
    learning.release_due(now=now + timedelta(days=7))
    count = db.session.scalar(
        select(func.count(OutboxEmail.id)).where(OutboxEmail.kind == "module_assigned")
    )
    assert count == 2


def test_an_old_link_starts_the_sequence_today(modules, people, now):
    later = now + timedelta(days=30)
    made = _sequence(people, later)
    assert made[0].release_at == later and made[1].release_at == later + learning.WEEK
    assert _released(people) == 1


def test_the_release_sweep_leaves_the_commit_to_its_caller(app, modules, people, now):
    """Services never commit: the worker commits after each hook (see tests/web)."""
    _sequence(people, now)
    db.session.commit()
    assert len(learning.release_due(now + timedelta(days=6, hours=23)).released) == 1
    assert _released(people) == 2
    db.session.rollback()
    assert _released(people) == 1


def test_the_sweep_is_registered_with_the_app(app):
    assert learning.release_due in app.extensions["familylink_sweeps"]


# --- When consent ends -------------------------------------------------------------------------


def test_consent_ending_stops_unreleased_assignments(modules, people, now):
    _sequence(people, now)
    learning.stop_assignments(
        family_user_id=people["family"].id, patient_id=people["patient"].id, now=now
    )
    unreleased = db.session.scalars(
        select(Assignment).where(Assignment.released_at.is_(None))
    ).all()
    assert unreleased and all(a.stopped_at == now for a in unreleased)
    assert learning.release_due(now + timedelta(days=60)) == learning.ReleaseReport([], 0)


def test_stopping_assignments_is_audited_once_as_a_count(modules, people, now):
    _sequence(people, now)
    ids = {"family_user_id": people["family"].id, "patient_id": people["patient"].id}
    stopped = learning.stop_assignments(**ids, now=now)
    assert stopped > 0
    assert learning.stop_assignments(**ids, now=now) == 0  # nothing left: no second row
    rows = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "learning.stopped"))
    assert [(r.patient_id, r.recipient_id, r.detail) for r in rows] == [
        (people["patient"].id, people["family"].id, {"assignments": stopped})
    ]


def test_an_expired_consent_is_never_released_to(modules, people, now):
    _sequence(people, now)
    after_expiry = now + timedelta(days=200)
    report = learning.release_due(after_expiry)
    assert report.released == [] and report.stopped == len(modules) - 1
    assert _released(people) == 1


def test_the_pending_email_is_cancelled_at_send_time_once_consent_is_gone(
    app, modules, people, now
):
    from familylink.models import ConsentClosure
    from familylink.services import mail

    record = consent.active_consent(people["family"].id, people["patient"].id, now=now)
    _sequence(people, now)
    db.session.add(ConsentClosure(consent_id=record.id, reason="revoked", closed_at=now))
    db.session.commit()
    report = mail.send_pending(now=now)
    assert report.cancelled == 1
    email = db.session.scalar(select(OutboxEmail).where(OutboxEmail.kind == "module_assigned"))
    assert email.status == OutboxStatus.CANCELLED


# --- Progress and private reflections ----------------------------------------------------------


def _assign(modules, people, now):
    learning.assign_modules(
        therapist=people["therapist"],
        patient_id=people["patient"].id,
        family_user_id=people["family"].id,
        module_ids=[modules[0].id],
        note=None,
        now=now,
    )


def _rows(people, now):
    (family,) = learning.family_progress(people["therapist"], people["patient"].id, now=now)
    return family.rows


def _save_about_patient(modules, people, now, *, reflection, shared, completed=False):
    """The family member's notes on the first module, a reading about the patient; `shared`
    lets that patient's therapist read the reflection."""
    return learning.save_progress(
        people["family"],
        modules[0],
        patient_id=people["patient"].id,
        completed=completed,
        reflection=reflection,
        share_with=people["patient"].id if shared else None,
        now=now,
    )


def test_the_therapist_sees_opened_and_completed(modules, people, now):
    _assign(modules, people, now)
    learning.open_module(
        people["family"], modules[0], patient_id=people["patient"].id, now=now + timedelta(hours=1)
    )
    done_at = now + timedelta(hours=2)
    _save_about_patient(modules, people, done_at, reflection="", shared=False, completed=True)
    (row,) = _rows(people, now)
    assert row.opened_at == now + timedelta(hours=1)
    assert row.completed_at == now + timedelta(hours=2)


def test_a_private_reflection_is_not_shown_to_the_therapist(modules, people, now):
    _assign(modules, people, now)
    _save_about_patient(modules, people, now, reflection="my secret", shared=False, completed=True)
    assert [r.shared_reflection for r in _rows(people, now)] == [None]


def test_a_shared_reflection_is_shown_to_the_therapist(modules, people, now):
    _assign(modules, people, now)
    _save_about_patient(modules, people, now, reflection="thoughts", shared=True)
    assert [r.shared_reflection for r in _rows(people, now)] == ["thoughts"]


def test_unsharing_hides_the_reflection_again(modules, people, now):
    _assign(modules, people, now)
    for share in (True, False):
        _save_about_patient(modules, people, now, reflection="x", shared=share)
    assert [r.shared_reflection for r in _rows(people, now)] == [None]


def test_the_reflection_never_enters_the_audit_log(modules, people, now):
    _assign(modules, people, now)
    _save_about_patient(
        modules, people, now, reflection="very private", shared=True, completed=True
    )
    details = db.session.scalars(select(AuditEvent.detail)).all()
    assert "very private" not in repr(details)


# --- Progress belongs to (family member, patient, module): issue 16 --------------------------


def _linked_to_both(people, now):
    """F is linked to P (Dr. A) and to Q (Dr. B); the first module is assigned for P only."""
    create_consent(people["other_patient"], people["family"], now=now, relationship="Aunt")


def _shared_rows(people, therapist, patient, now):
    (family,) = learning.family_progress(people[therapist], people[patient].id, now=now)
    return [(r.module.slug, r.shared_reflection) for r in family.rows]


def test_a_reflection_about_one_patient_never_reaches_the_other_patients_therapist(
    modules, people, now
):
    _linked_to_both(people, now)
    _assign(modules, people, now)
    _save_about_patient(modules, people, now, reflection="about P", shared=True, completed=True)
    assert _shared_rows(people, "other_therapist", "other_patient", now) == []
    assert _shared_rows(people, "therapist", "patient", now) == [(modules[0].slug, "about P")]


def test_a_reading_of_ones_own_is_shared_with_nobody(modules, people, now):
    _linked_to_both(people, now)
    reading = learning.open_module(people["family"], modules[1], now=now)
    assert reading.patient is None and reading.progress.patient_id is None
    assert {p.id for p in reading.share_choices} == {
        people["patient"].id,
        people["other_patient"].id,
    }
    learning.save_progress(
        people["family"], modules[1], completed=True, reflection="mine", share_with=None, now=now
    )
    assert _shared_rows(people, "therapist", "patient", now) == []
    assert _shared_rows(people, "other_therapist", "other_patient", now) == []


def test_sharing_a_reading_of_ones_own_makes_it_about_the_chosen_patient(modules, people, now):
    _linked_to_both(people, now)
    learning.open_module(people["family"], modules[1], now=now - timedelta(hours=1))
    progress = learning.save_progress(
        people["family"],
        modules[1],
        completed=False,
        reflection="for Q",
        share_with=people["other_patient"].id,
        now=now,
    )
    assert progress.patient_id == people["other_patient"].id
    assert progress.opened_at == now - timedelta(hours=1)  # the notes moved, opening kept
    assert learning.progress_for(people["family"], modules[1], None) is None
    assert _shared_rows(people, "other_therapist", "other_patient", now) == [
        (modules[1].slug, "for Q")
    ]
    assert _shared_rows(people, "therapist", "patient", now) == []


def test_sharing_a_finished_reading_of_ones_own_keeps_the_day_it_was_finished(modules, people, now):
    _linked_to_both(people, now)
    finished = now - timedelta(days=3)
    learning.save_progress(
        people["family"], modules[1], completed=True, reflection="", share_with=None, now=finished
    )
    progress = learning.save_progress(
        people["family"],
        modules[1],
        completed=True,
        reflection="for Q",
        share_with=people["other_patient"].id,
        now=now,
    )
    assert progress.patient_id == people["other_patient"].id
    assert progress.completed_at == finished  # not the day it was shared


@pytest.mark.parametrize("whom", ["other_patient", "stranger", "therapist"])
def test_a_reading_about_a_patient_shares_with_that_patients_therapist_only(
    modules, people, now, whom
):
    _linked_to_both(people, now)
    with pytest.raises(ValidationError) as refused:
        learning.save_progress(
            people["family"],
            modules[0],
            patient_id=people["patient"].id,
            completed=False,
            reflection="x",
            share_with=people[whom].id,
            now=now,
        )
    assert refused.value.field == "share"


def test_a_reading_about_a_patient_without_consent_is_not_found(modules, people, now):
    with pytest.raises(NotFound):
        learning.open_module(
            people["family"], modules[0], patient_id=people["other_patient"].id, now=now
        )


def test_a_shared_reflection_is_hidden_once_the_consent_ends(modules, people, now):
    _assign(modules, people, now)
    _save_about_patient(modules, people, now, reflection="while consented", shared=True)
    later = now + timedelta(days=400)  # past the consent's end
    assert learning.family_progress(people["therapist"], people["patient"].id, now=later) == []


def test_another_therapist_cannot_see_progress(modules, people, now):
    with pytest.raises(NotFound):
        learning.family_progress(people["other_therapist"], people["patient"].id, now=now)


def test_viewing_progress_is_audited(modules, people, now):
    learning.family_progress(people["therapist"], people["patient"].id, now=now)
    event = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "learning.progress_viewed")
    )
    assert (event.actor_id, event.patient_id) == (people["therapist"].id, people["patient"].id)


def test_only_family_members_keep_progress(modules, people, now):
    with pytest.raises(NotFound):
        learning.open_module(people["patient"], modules[0], now=now)


def test_released_readings_show_only_while_consent_is_active(modules, people, now):
    _assign(modules, people, now)
    assert len(learning.assigned_to(people["family"], now=now)) == 1
    assert learning.assigned_to(people["family"], now=now + timedelta(days=365)) == []


# --- Demo --------------------------------------------------------------------------------------


def test_seeding_readings_without_consents_only_loads_modules(app_ctx, now):
    from familylink import demo

    demo.seed_learning(now=now, progress=lambda _: None)
    assert db.session.scalar(select(func.count(LearningModule.id))) >= 10
    assert db.session.scalar(select(func.count(Assignment.id))) == 0


def test_the_demo_starts_marias_weekly_sequence_about_jordan(app_ctx, now):
    from familylink import demo
    from familylink.models import User

    demo.seed(password="demo password long enough", now=now, progress=lambda _: None)
    maria = db.session.scalar(select(User).where(User.email == "maria@example.org"))
    assignments = db.session.scalars(
        select(Assignment).where(Assignment.family_user_id == maria.id)
    ).all()
    assert len(assignments) >= 10
    assert [a.released_at is not None for a in assignments].count(True) == 1


def test_showing_assigned_readings_is_one_disclosure_per_patient_shown(modules, people, now):
    from familylink.services import audit

    _assign(modules, people, now)
    learning.assigned_to(people["family"], now=now)
    learning.assigned_to(people["stranger"], now=now)  # nothing to show: nothing recorded
    family, patient = people["family"], people["patient"]
    assert [
        (e.actor_id, e.patient_id, e.recipient_id, e.object_type, e.object_id, e.detail)
        for e in audit.search(action="disclosure.viewed")
    ] == [(family.id, patient.id, family.id, None, None, {"what": "reading assignments"})]


def test_a_reading_unpublished_before_its_release_waits_and_sends_nothing(modules, people, now):
    made = _sequence(people, now)
    second = made[1]
    db.session.get(LearningModule, second.module_id).published = False
    db.session.flush()
    week_on = second.release_at
    assert learning.release_due(week_on).released == []
    emails = select(func.count(OutboxEmail.id)).where(OutboxEmail.kind == "module_assigned")
    assert db.session.scalar(emails) == 1  # the first week's only
    db.session.get(LearningModule, second.module_id).published = True
    assert learning.release_due(week_on + timedelta(hours=1)).released == [second]
    assert db.session.scalar(emails) == 2
