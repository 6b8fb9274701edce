"""Practice tools: each tool saves, stays private until shared, reaches only the therapist of
the patient chosen while that consent is in force, and never the patient."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import AuditEvent, PracticeEntry, Role, ToolKind
from familylink.services import consent, learning
from familylink.services.errors import NotFound, ValidationError
from familylink.services.learning import practice
from tests.factories import create_consent

ANSWERS = {
    ToolKind.BEFORE_AFTER: {
        "triggers": "Friday paydays",
        "what_happens": "Drinks with coworkers",
        "short_term_pull": "Relief after a hard week",
        "long_term_cost": "Missed Saturday with the kids",
    },
    ToolKind.MESSAGE: {},
    ToolKind.REWARDS: {"when_sober": "Cook together", "when_not_sober": "Stop covering at work"},
    ToolKind.SAFETY_PLAN: {
        "warning_signs": "Shouting, slammed doors",
        "people_to_call": "Aunt Rosa 555-0101",
        "naloxone_place": "Kitchen drawer by the sink",
        "safe_place": "Rosa's house",
    },
}


@pytest.fixture
def people(create_user, now):
    lee = create_user(Role.THERAPIST, email="lee@example.org")
    patel = create_user(Role.THERAPIST, email="patel@example.org")
    jordan = create_user(Role.PATIENT, email="jordan@example.org", therapist=lee)
    casey = create_user(Role.PATIENT, email="casey@example.org", therapist=patel)
    maria = create_user(Role.FAMILY, email="maria@example.org")
    drew = create_user(Role.FAMILY, email="drew@example.org")
    record = create_consent(jordan, maria, now=now)
    create_consent(casey, drew, now=now)
    return {
        "lee": lee,
        "patel": patel,
        "jordan": jordan,
        "casey": casey,
        "maria": maria,
        "drew": drew,
        "consent": record,
    }


def _save(member, kind, now, *, share_with=None, entry_id=None, message=None, checked=()):
    return practice.save_entry(
        member,
        kind,
        entry_id=entry_id,
        title="Fridays",
        answers=ANSWERS[kind],
        message=message if message is not None else "I'd love dinner together tonight.",
        checked=checked,
        share_with=share_with,
        now=now,
    )


def _shared_texts(therapist, patient, now) -> list[str]:
    return [
        entry.title
        for shared in practice.shared_practice(therapist, patient.id, now=now)
        for entry in shared.entries
    ]


@pytest.mark.parametrize("kind", list(ToolKind))
def test_each_tool_saves_its_answers_privately(people, now, kind):
    entry = _save(people["maria"], kind, now)
    assert entry.answers == ANSWERS[kind]
    assert entry.shared_patient_id is None
    assert practice.own_entries(people["maria"]) == [entry]


@pytest.mark.parametrize("kind", list(ToolKind))
def test_an_unshared_tool_reaches_no_therapist(people, now, kind):
    _save(people["maria"], kind, now)
    assert _shared_texts(people["lee"], people["jordan"], now) == []


@pytest.mark.parametrize("kind", list(ToolKind))
def test_a_shared_tool_reaches_the_chosen_patients_therapist(people, now, kind):
    _save(people["maria"], kind, now, share_with=people["jordan"].id)
    assert len(_shared_texts(people["lee"], people["jordan"], now)) == 1


@pytest.mark.parametrize("kind", list(ToolKind))
def test_unsharing_takes_it_back(people, now, kind):
    entry = _save(people["maria"], kind, now, share_with=people["jordan"].id)
    _save(people["maria"], kind, now, entry_id=entry.id, share_with=None)
    assert _shared_texts(people["lee"], people["jordan"], now) == []


def test_the_therapist_of_another_patient_never_sees_it(people, now):
    _save(people["maria"], ToolKind.REWARDS, now, share_with=people["jordan"].id)
    with pytest.raises(NotFound):
        practice.shared_practice(people["patel"], people["jordan"].id, now=now)
    assert _shared_texts(people["patel"], people["casey"], now) == []


def test_sharing_with_a_patient_not_offered_is_refused(people, now):
    with pytest.raises(ValidationError) as refused:
        _save(people["maria"], ToolKind.REWARDS, now, share_with=people["casey"].id)
    assert refused.value.field == "share"


def test_after_revocation_the_therapist_no_longer_sees_it(people, now):
    _save(people["maria"], ToolKind.SAFETY_PLAN, now, share_with=people["jordan"].id)
    later = now + timedelta(hours=1)
    consent.revoke_consent(people["jordan"], people["consent"].id, now=later)
    assert _shared_texts(people["lee"], people["jordan"], later + timedelta(minutes=1)) == []


def test_nobody_but_the_writer_opens_an_entry(people, now):
    entry = _save(people["maria"], ToolKind.REWARDS, now, share_with=people["jordan"].id)
    for other in ("drew", "jordan", "lee"):
        with pytest.raises(NotFound):
            practice.own_entry(people[other], entry.id)


def test_the_patient_has_no_practice_tools_at_all(people, now):
    _save(people["maria"], ToolKind.SAFETY_PLAN, now, share_with=people["jordan"].id)
    with pytest.raises(NotFound):
        practice.own_entries(people["jordan"])
    assert practice.safety_plan(people["jordan"]) is None


def test_a_rewrite_is_kept_as_a_new_version(people, now):
    entry = _save(people["maria"], ToolKind.MESSAGE, now, message="Stop drinking.")
    _save(
        people["maria"],
        ToolKind.MESSAGE,
        now,
        entry_id=entry.id,
        message="I miss our evenings. Could we walk after dinner?",
        checked=["brief", "positive", "feelings", "nonsense"],
    )
    db.session.refresh(entry)
    assert [(v.number, v.text) for v in entry.versions] == [
        (2, "I miss our evenings. Could we walk after dinner?"),
        (1, "Stop drinking."),
    ]
    assert entry.versions[0].checked == ["brief", "positive", "feelings"]


def test_saving_the_same_words_adds_no_version(people, now):
    entry = _save(people["maria"], ToolKind.MESSAGE, now)
    _save(people["maria"], ToolKind.MESSAGE, now, entry_id=entry.id)
    db.session.refresh(entry)
    assert len(entry.versions) == 1


def test_a_message_needs_words(people, now):
    with pytest.raises(ValidationError) as refused:
        _save(people["maria"], ToolKind.MESSAGE, now, message="  ")
    assert refused.value.field == "message"


def test_a_member_has_one_safety_plan(people, now):
    first = _save(people["maria"], ToolKind.SAFETY_PLAN, now)
    second = _save(people["maria"], ToolKind.SAFETY_PLAN, now)
    assert first.id == second.id
    assert practice.safety_plan(people["maria"]) == first


@pytest.mark.parametrize(
    ("kind", "field", "length"),
    [
        (ToolKind.BEFORE_AFTER, "triggers", practice.MAX_ANSWER + 1),
        (ToolKind.SAFETY_PLAN, "warning_signs", practice.TOOLS[ToolKind.SAFETY_PLAN].limit + 1),
    ],
)
def test_an_over_long_answer_is_refused(people, now, kind, field, length):
    with pytest.raises(ValidationError) as refused:
        practice.save_entry(
            people["maria"],
            kind,
            title="Too long",
            answers={field: "x" * length},
            share_with=None,
            now=now,
        )
    assert refused.value.field == field
    assert db.session.scalars(select(PracticeEntry)).all() == []


def test_a_worksheet_needs_a_name(people, now):
    with pytest.raises(ValidationError) as refused:
        practice.save_entry(
            people["maria"], ToolKind.REWARDS, title=" ", answers={}, share_with=None, now=now
        )
    assert refused.value.field == "title"


def test_an_unknown_tool_is_not_found(people, now):
    with pytest.raises(NotFound):
        practice.tool("diary")


def test_the_therapists_view_is_audited_through_the_gate(people, now):
    practice.shared_practice(people["lee"], people["jordan"].id, now=now)
    db.session.commit()  # rows recorded outside an action are written at the commit
    rows = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "patient_data.viewed")
    ).all()
    assert [(r.actor_id, r.patient_id, r.detail) for r in rows] == [
        (people["lee"].id, people["jordan"].id, {"page": "shared practice tools"})
    ]


def test_the_audit_of_sharing_never_holds_the_words(people, now):
    _save(people["maria"], ToolKind.SAFETY_PLAN, now, share_with=people["jordan"].id)
    row = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "practice.saved"))
    assert row.patient_id == people["jordan"].id
    assert row.detail == {"tool": "safety_plan", "shared": True}


def test_a_private_entry_writes_nothing_about_a_patient(people, now):
    _save(people["maria"], ToolKind.REWARDS, now)
    assert (
        db.session.scalar(select(AuditEvent).where(AuditEvent.action == "practice.saved")) is None
    )


def test_a_therapist_may_suggest_a_tool_with_a_reading(people, now):
    learning.load_modules(now=now)
    module = learning.all_modules()[0]
    made = learning.assign_modules(
        therapist=people["lee"],
        patient_id=people["jordan"].id,
        family_user_id=people["maria"].id,
        module_ids=[module.id],
        note=None,
        tool="message",
        now=now,
    )
    assert [a.tool for a in made] == ["message"]
    assert [r.tool for r in learning.assigned_to(people["maria"], now=now)] == [ToolKind.MESSAGE]


def test_an_unknown_tool_with_a_reading_is_refused(people, now):
    learning.load_modules(now=now)
    with pytest.raises(ValidationError) as refused:
        learning.assign_modules(
            therapist=people["lee"],
            patient_id=people["jordan"].id,
            family_user_id=people["maria"].id,
            module_ids=[learning.all_modules()[0].id],
            note=None,
            tool="diary",
            now=now,
        )
    assert refused.value.field == "tool"
