"""Who may open what: every endpoint in app.url_map, asked by every kind of person.

The expected answers live in ONE table, `EXPECTED`, keyed by (endpoint, method). A new
route that is not in the table fails `test_every_route_is_in_the_table`, so nothing
ships unchecked. To add a feature's routes, add rows (and any URL arguments to
`URL_ARGS`): ids in URLs always belong to someone else, so object routes answer 404.

Answers: 200/400 the page (400: the empty form was refused), 302 a redirect (to sign in
for anonymous visitors), 404 "not yours / no such thing" — never a hint that it exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from familylink.extensions import db
from familylink.models import (
    AccountToken,
    Appointment,
    AppointmentAttendee,
    AppointmentFamily,
    AuditEvent,
    AvailabilityWindow,
    ClosureReason,
    ConsentClosure,
    ConsentRecord,
    FamilyLink,
    LearningModule,
    OutboxEmail,
    PracticeEntry,
    Program,
    ProgressUpdate,
    ProgressUpdateRecipient,
    ProgressUpdateVersion,
    Role,
    ToolKind,
    UpdateStatus,
    User,
    UserSession,
    VersionSource,
    WaitlistEntry,
    WaitlistStatus,
)
from familylink.models.types import utcnow
from familylink.services import learning, mail, sessions
from familylink.services.learning.content import _apply
from tests.booking_setup import add_weekday_hours, create_session_types
from tests.conftest import AuthActions
from tests.factories import create_consent, create_user
from tests.web.test_auth_routes import GOOD

ACTORS = (
    "anonymous",
    "family_consented",  # active consent from the patient
    "family_no_consent",  # signed up, never linked
    "family_revoked",  # the patient revoked their consent
    "family_expired",  # their consent ran out
    "patient",
    "other_patient",  # a patient of another therapist
    "therapist",  # the patient's therapist
    "other_therapist",
    "admin",
    "director",  # the program director: the program overview, nothing patient-linked
)
FAMILY = ("family_consented", "family_no_consent", "family_revoked", "family_expired")
PATIENTS = ("patient", "other_patient")
THERAPISTS = ("therapist", "other_therapist")
SIGNED_IN = ACTORS[1:]
STAFF = (*THERAPISTS, "admin", "director")

# Who may see the patient's name anywhere (every response is checked for it).
MAY_SEE_PATIENT = {"family_consented", "patient", "therapist"}
# And the other patient's name (their consented family member is not one of the askers).
MAY_SEE_OTHER_PATIENT = {"other_patient", "other_therapist"}
# Pages where the admin sees every account, patients' too (each patient shown is audited as
# "patient_data.viewed": see tests/web/test_admin_accounts.py).
ADMIN_SEES_ACCOUNTS = {("admin.accounts_list", "GET")}


def every(answer: int, **exceptions: int) -> dict[str, int]:
    """The same answer for everyone, except those named."""
    return {actor: exceptions.get(actor, answer) for actor in ACTORS}


def only(*allowed: str, ok: int = 200) -> dict[str, int]:
    """Signed-in `allowed` get `ok`; other signed-in people 404; anonymous sent to sign in."""
    return {
        actor: 302 if actor == "anonymous" else (ok if actor in allowed else 404)
        for actor in ACTORS
    }


def signed_in(ok: int = 200) -> dict[str, int]:
    return only(*SIGNED_IN, ok=ok)


def anonymous_only(ok: int = 200) -> dict[str, int]:
    """Sign-in pages: signed-in people are sent home."""
    return every(302, anonymous=ok)


# fmt: off
EXPECTED: dict[tuple[str, str], dict[str, int]] = {
    ("static", "GET"): every(200),
    ("main.home", "GET"): anonymous_only(),
    ("main.crisis", "GET"): every(200),
    ("main.healthz", "GET"): every(200),
    # The language switch: anyone; an empty choice is refused back to where they were.
    ("main.set_language", "POST"): every(302),
    ("auth.register", "GET"): anonymous_only(),
    ("auth.register", "POST"): anonymous_only(400),
    ("auth.check_email", "GET"): every(200),
    ("auth.verify_email", "GET"): every(200),
    ("auth.verify_email", "POST"): every(400),  # someone else's / unknown token
    ("auth.login", "GET"): anonymous_only(),
    ("auth.login", "POST"): anonymous_only(400),
    ("auth.login_code", "GET"): every(302),  # no password step pending
    ("auth.login_code", "POST"): every(302),
    ("auth.logout", "POST"): every(302),
    ("auth.request_reset", "GET"): every(200),
    ("auth.request_reset", "POST"): every(400),
    ("auth.reset_password", "GET"): every(200),
    ("auth.reset_password", "POST"): every(400),
    ("auth.accept_invitation", "GET"): every(200),
    ("auth.accept_invitation", "POST"): every(400),
    ("auth.confirm_email_change", "GET"): every(200),
    ("auth.confirm_email_change", "POST"): every(400),
    ("admin.home", "GET"): only("admin"),
    ("admin.settings", "GET"): only("admin"),
    ("admin.settings", "POST"): only("admin", ok=400),
    ("admin.invite_therapist", "POST"): only("admin", ok=400),
    ("admin.invite_director", "POST"): only("admin", ok=400),
    # Counts for the program as a whole; the director's has no per-therapist table.
    ("overview.page", "GET"): only("admin", "director"),
    ("overview.export", "GET"): only("admin", "director"),
    ("admin.audit_log", "GET"): only("admin"),
    ("admin.audit_export", "GET"): only("admin"),
    ("admin.outbox", "GET"): only("admin"),
    ("admin.accounts_list", "GET"): only("admin"),
    # No account has the id in the URL: nobody, not even the admin, can act on it.
    ("admin.account_active", "POST"): only(),
    ("admin.account_reset_two_step", "GET"): only(),
    ("admin.account_reset_two_step", "POST"): only(),
    # The email in the URL is pending, not failed: there is nothing to retry, even for admins.
    ("admin.retry_email", "POST"): only("admin", ok=404),
    ("therapist.home", "GET"): only(*THERAPISTS),
    ("therapist.enrol_patient", "POST"): only(*THERAPISTS, ok=400),
    ("patient.home", "GET"): only(*PATIENTS),
    ("family.home", "GET"): only(*FAMILY),
    ("account.home", "GET"): signed_in(),
    ("account.session_list", "GET"): signed_in(),
    ("account.end_session", "POST"): signed_in(404),  # someone else's session
    ("account.mfa_setup", "GET"): signed_in(),
    # Not yet enrolled: the empty code is refused. Staff are enrolled: the status page.
    ("account.mfa_setup", "POST"): {**signed_in(400), **{a: 200 for a in STAFF}},
    ("account.mfa_qr", "GET"): signed_in(404),  # enrolled, or no enrolment started
    ("account.mfa_new_codes", "POST"): only(*STAFF, ok=400),  # the password is asked again
    ("account.mfa_disable", "POST"): signed_in(404),  # staff may not; others have it off
    ("account.change_language", "POST"): signed_in(400),
    ("account.change_password", "GET"): signed_in(),
    ("account.change_password", "POST"): signed_in(400),
    ("account.change_email", "GET"): signed_in(),
    ("account.change_email", "POST"): signed_in(400),
    # The development mailbox exists only with DEV_MAILBOX and no SMTP server (never in
    # production: tests/web/test_pages.py), and shows every email by design.
    ("dev.mailbox", "GET"): every(200),
    ("dev.message", "GET"): every(200),
    # --- Booking (family members). The seat is of the other patient's family; `?patient=`
    # names the asker's patient, so only a family member holding scheduling consent books.
    ("booking.index", "GET"): only(*FAMILY),
    ("booking.new", "GET"): only("family_consented"),
    ("booking.new", "POST"): only("family_consented", ok=400),
    ("booking.groups", "GET"): only("family_consented"),
    ("booking.take_seat", "POST"): only(),  # a group of another therapist
    ("booking.show", "GET"): only(),
    ("booking.ics", "GET"): only(),
    ("booking.cancel", "GET"): only(),  # the question asked first, for the other family's seat
    ("booking.cancel", "POST"): only(),
    ("booking.cancel_future", "GET"): only(),  # the other family's weekly series
    ("booking.cancel_future", "POST"): only(),
    ("booking.reschedule", "POST"): only(),
    ("booking.claim", "GET"): only(),  # the waitlist offer went to another family
    ("booking.claim", "POST"): only(),
    ("booking.leave_waitlist", "POST"): only(),  # the other family's place in line
    ("booking.feed", "GET"): only(*FAMILY, *PATIENTS, *THERAPISTS),
    ("booking.feed", "POST"): only(*FAMILY, *PATIENTS, *THERAPISTS),  # no action chosen
    ("booking.feed_ics", "GET"): every(404),  # an unknown token
    # --- Family pages
    ("family.patient", "GET"): only(),  # the other patient
    ("family.accept_invitation", "GET"): every(400),  # an unknown token
    ("family.accept_invitation", "POST"): every(400),
    # --- Patient pages (the consent is the other patient's, already revoked)
    ("patient.consents", "GET"): only(*PATIENTS),
    ("patient.new_consent", "GET"): only(*PATIENTS),
    ("patient.new_consent", "POST"): only(*PATIENTS, ok=400),
    ("patient.consent_detail", "GET"): only("other_patient"),
    ("patient.revoke", "GET"): only("other_patient"),
    ("patient.revoke", "POST"): only("other_patient", ok=302),  # already revoked: said so
    ("patient.shared", "GET"): only(*PATIENTS),
    ("patient.sessions", "GET"): only(*PATIENTS),
    ("patient.updates", "GET"): only(*PATIENTS),
    ("patient.decide_update", "POST"): only("other_patient", ok=303),  # already declined
    # --- Therapist pages: ids are the other therapist's patient, consent, seat, window
    ("therapist.family_contacts", "GET"): only("other_therapist"),
    ("therapist.discharge", "POST"): only("other_therapist", ok=400),
    ("therapist.readmit", "POST"): only("other_therapist", ok=400),
    ("therapist.record_paper_consent", "GET"): only("other_therapist"),
    ("therapist.record_paper_consent", "POST"): only("other_therapist", ok=400),
    ("therapist.consent_detail", "GET"): only("other_therapist"),
    ("therapist.record_revocation", "GET"): only("other_therapist"),
    ("therapist.record_revocation", "POST"): only("other_therapist", ok=400),
    ("therapist.program_attendance", "GET"): only(*THERAPISTS),  # their own patients' day
    ("therapist.program_attendance", "POST"): only(*THERAPISTS, ok=400),  # no day: refused


    ("therapist.progress_updates_page", "GET"): only("other_therapist"),
    ("therapist.progress_updates_page", "POST"): only("other_therapist", ok=400),
    ("therapist.revise_update", "GET"): only("other_therapist"),  # says: already decided
    ("therapist.revise_update", "POST"): only("other_therapist", ok=400),
    ("therapist_booking.calendar", "GET"): only(*THERAPISTS),
    ("therapist_booking.attendance", "POST"): only("other_therapist", ok=303),  # no value: refused
    ("therapist_booking.cancel_seat", "GET"): only("other_therapist"),
    # no reason given (or already held): the confirmation page again, nothing changed
    ("therapist_booking.cancel_seat", "POST"): only("other_therapist", ok=400),
    ("therapist.availability", "GET"): only(*THERAPISTS),
    ("therapist.add_window", "POST"): only(*THERAPISTS, ok=400),
    ("therapist.add_override", "POST"): only(*THERAPISTS, ok=400),
    ("therapist.add_session_type", "POST"): only(*THERAPISTS, ok=400),
    ("therapist.remove_availability", "POST"): only("other_therapist", ok=302),
    ("therapist.groups", "GET"): only(*THERAPISTS),
    ("therapist.groups", "POST"): only(*THERAPISTS, ok=400),
    # `?patient=` is the therapist's own patient
    ("therapist_booking.book_for_family", "GET"): only("therapist"),
    ("therapist_booking.book_for_family", "POST"): only("therapist", ok=400),
    # --- Learning: library modules are for every family member (self-chosen reading)
    # The reading library is for family members and their clinicians, not the director.
    ("learn.library", "GET"): only(*FAMILY, *THERAPISTS, "admin"),
    ("learn.module", "GET"): only(*FAMILY, *THERAPISTS, "admin"),
    ("learn.save_progress", "POST"): only(*FAMILY, ok=302),  # the empty form: not done yet
    ("learn.therapist_home", "GET"): only(*THERAPISTS),
    ("learn.therapist_patient", "GET"): only("other_therapist"),
    ("learn.assign", "POST"): only("other_therapist", ok=400),
    ("learn.apply_sequence", "POST"): only("other_therapist", ok=400),
    ("learn.practice_home", "GET"): only(*FAMILY),
    ("learn.new_practice", "GET"): only(),  # "window" is no practice tool
    ("learn.new_practice", "POST"): only(),
    ("learn.practice_entry", "GET"): only(),  # another family member's safety plan, shared
    ("learn.practice_entry", "POST"): only(),
    ("learn.delete_practice", "POST"): only(),
    ("learn.safety_card", "GET"): only(),
    ("learn.admin_modules", "GET"): only("admin"),
    ("learn.edit_module", "GET"): only("admin"),
    ("learn.edit_module", "POST"): only("admin", ok=400),
    ("learn.restore_version", "POST"): only("admin", ok=302),
    # The seat is the other therapist's own: they may move it (the empty form is refused).
    ("therapist_booking.reschedule_seat", "GET"): only("other_therapist"),
    ("therapist_booking.reschedule_seat", "POST"): only("other_therapist", ok=400),
    # Their own single session: the page says it is in no weekly series; a POST is refused.
    ("therapist_booking.move_future", "GET"): only("other_therapist"),
    ("therapist_booking.move_future", "POST"): only("other_therapist", ok=400),
    # A video join link: the token is someone else's (and joining is for attendees only).
    ("rooms.join", "GET"): only(),
    # The room page of the other therapist's video group; the empty form clears no link.
    ("rooms.room_link", "GET"): only("other_therapist"),
    ("rooms.room_link", "POST"): only("other_therapist", ok=302),
    ("admin.session_types", "GET"): only("admin"),
    ("admin.session_types", "POST"): only("admin", ok=400),
    ("admin.edit_session_type", "GET"): only(),  # no session type with that id
    ("admin.edit_session_type", "POST"): only(),
    ("admin.session_type_active", "POST"): only(),
}
# fmt: on

# Values for URL arguments: always something that is not the asker's.
URL_ARGS = {
    "filename": lambda world: "style.css",
    "token": lambda world: "someone-elses-token-3f9a1c",
    "session_id": lambda world: world.victim_session_id,
    "email_id": lambda world: world.victim_email_id,
    "seat_id": lambda world: world.objects["seat_id"],
    "appointment_id": lambda world: world.objects["appointment_id"],
    "entry_id": lambda world: world.objects["entry_id"],
    "patient_id": lambda world: world.objects["patient_id"],
    "consent_id": lambda world: world.objects["consent_id"],
    "slug": lambda world: world.objects["slug"],
    "module_id": lambda world: world.objects["module_id"],
    "version_id": lambda world: world.objects["version_id"],
    "practice_id": lambda world: world.objects["practice_id"],
    "kind": lambda world: "window",
    "item_id": lambda world: world.objects["item_id"],
    "type_id": lambda world: 987654,  # no session type has it
    "user_id": lambda world: 987655,  # no account has it
    "update_id": lambda world: world.objects["update_id"],
}

# Query arguments some pages need: the patient the asker may (or may not) act for.
QUERY_ARGS = {
    "booking.new": lambda world: {"patient": world.ids["patient"]},
    "booking.groups": lambda world: {"patient": world.ids["patient"]},
    "booking.take_seat": lambda world: {"patient": world.ids["patient"]},
    "therapist_booking.book_for_family": lambda world: {"patient": world.ids["patient"]},
}

# Sent with every POST: none of them may change who owns what or who may do what.
EXTRA_FIELDS = {
    "role": "admin",
    "status": "active",
    "therapist_id": "0",
    "patient_id": "0",
    "consent_id": "0",
}


@dataclass
class World:
    ids: dict[str, int] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)
    patient_name: str = ""
    victim_session_id: int = 0
    victim_email_id: int = 0
    # Objects of the OTHER patient's family and of the other therapist.
    objects: dict[str, int | str] = field(default_factory=dict)


def build_world(app) -> World:
    world = World()
    now = utcnow()
    with app.test_request_context():
        therapist = create_user(Role.THERAPIST, name="Dana Therapist")
        other_therapist = create_user(Role.THERAPIST)
        patient = create_user(Role.PATIENT, name="Jordan Zyxwvutsky", therapist=therapist)
        other_patient = create_user(
            Role.PATIENT, name="Casey Qwertyplonk", therapist=other_therapist
        )
        people = {
            "therapist": therapist,
            "other_therapist": other_therapist,
            "patient": patient,
            "other_patient": other_patient,
            "admin": create_user(Role.ADMIN),
            "director": create_user(Role.DIRECTOR),
        }
        for name in FAMILY:
            people[name] = create_user(Role.FAMILY)
        create_consent(patient, people["family_consented"], now=now)
        _revoked_consent(patient, people["family_revoked"], at=now - timedelta(hours=1))
        create_consent(
            patient,
            people["family_expired"],
            now=now - timedelta(days=200),
            expires_at=now - timedelta(days=1),
        )
        world.objects = _other_peoples_things(people, now)
        victim = create_user(Role.FAMILY)
        victim_session, _raw = sessions.start_session(victim, now=now)
        email = mail.queue_email(
            "password_reset",
            to=victim,
            dedupe_key="matrix:victim",
            now=now,
            context={"link": "https://familylink.test/reset/x"},
        )
        db.session.commit()
        world.ids = {name: user.id for name, user in people.items()}
        world.emails = {name: user.email for name, user in people.items()}
        world.patient_name = patient.name
        world.victim_session_id = victim_session.id
        world.victim_email_id = email.id
    return world


def _revoked_consent(patient, member, *, at) -> ConsentRecord:
    """A consent the patient signed a day before `at` and revoked at `at`."""
    record = create_consent(patient, member, now=at - timedelta(days=1))
    db.session.add(
        ConsentClosure(
            consent_id=record.id,
            reason=ClosureReason.REVOKED,
            closed_at=at,
            closed_by_id=patient.id,
        )
    )
    return record


def _appointment(uid: str, therapist, session_type, starts_at) -> Appointment:
    return Appointment(
        uid=f"{uid}@familylink.test",
        therapist_id=therapist.id,
        session_type_id=session_type.id,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=session_type.duration_minutes),
        capacity=session_type.capacity,
    )


def _other_peoples_things(people: dict, now) -> dict[str, int | str]:
    """What the routes with ids need, all of it belonging to the other patient's side.

    Chosen so that the rightful owner's POST changes nothing the table checks: the seat is
    of a past session (cannot be cancelled), the consent is already revoked.
    """
    other_patient, other_therapist = people["other_patient"], people["other_therapist"]
    other_family = create_user(Role.FAMILY, name="Sam Other")
    create_consent(other_patient, other_family, now=now)
    revoked = _revoked_consent(other_patient, other_family, at=now - timedelta(days=1))
    private, group = create_session_types()
    add_weekday_hours(people["therapist"])
    add_weekday_hours(other_therapist, days=range(1))
    window = db.session.scalar(
        select(AvailabilityWindow).where(AvailabilityWindow.therapist_id == other_therapist.id)
    )
    session = _appointment("matrix-past", other_therapist, private, now - timedelta(days=1))
    group_session = _appointment("matrix-group", other_therapist, group, now + timedelta(days=3))
    db.session.add_all([session, group_session])
    db.session.flush()
    seat = AppointmentFamily(
        appointment_id=session.id, patient_id=other_patient.id, booked_by_id=other_family.id
    )
    db.session.add(seat)
    db.session.flush()
    db.session.add(AppointmentAttendee(seat_id=seat.id, user_id=other_family.id))
    entry = WaitlistEntry(
        appointment_id=group_session.id,
        patient_id=other_patient.id,
        family_user_id=other_family.id,
        status=WaitlistStatus.OFFERED,
        offered_until=now + timedelta(hours=12),
    )
    text = learning.parse_module_file(learning.content_files()[0])
    module = LearningModule(slug=text.slug)
    plan = PracticeEntry(
        family_user_id=other_family.id,
        kind=ToolKind.SAFETY_PLAN,
        title="Safety plan",
        answers={"safe_place": "Next door"},
        shared_patient_id=other_patient.id,
    )
    db.session.add_all([entry, module, plan])
    version = _apply(module, text, source=VersionSource.FILE, actor=None, now=now)
    # A progress update the other patient already declined: their answer again is refused.
    update = ProgressUpdate(
        patient_id=other_patient.id,
        therapist_id=other_therapist.id,
        status=UpdateStatus.DECLINED,
        created_at=now,
        versions=[ProgressUpdateVersion(number=1, text="What we worked on: plans.")],
        recipients=[ProgressUpdateRecipient(family_user_id=other_family.id)],
    )
    db.session.add(update)
    db.session.flush()
    return {
        "update_id": update.id,
        "seat_id": seat.id,
        "appointment_id": group_session.id,
        "entry_id": entry.id,
        "patient_id": other_patient.id,
        "consent_id": revoked.id,
        "slug": module.slug,
        "module_id": module.id,
        "version_id": version.id,
        "item_id": window.id,
        "practice_id": plan.id,
    }


def _routes(app) -> set[tuple[str, str]]:
    return {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def test_every_route_is_in_the_table(app):
    routes = _routes(app)
    missing = sorted(routes - EXPECTED.keys())
    stale = sorted(EXPECTED.keys() - routes)
    assert not missing, f"add these routes to EXPECTED in {__file__}: {missing}"
    assert not stale, f"these rows name routes that no longer exist: {stale}"


def test_every_row_names_every_kind_of_person():
    for key, answers in EXPECTED.items():
        assert set(answers) == set(ACTORS), key


def _url(app, endpoint: str, world: World) -> str:
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    values = {arg: URL_ARGS[arg](world) for arg in rule.arguments}
    if endpoint in QUERY_ARGS:
        values.update(QUERY_ARGS[endpoint](world))
    with app.test_request_context():
        from flask import url_for

        return url_for(endpoint, **values)


def state_snapshot() -> dict:
    """What a refused request must not change (audit rows and sessions may grow).

    Call inside an app context.
    """
    return {
        "users": db.session.execute(
            select(
                User.id,
                User.email,
                User.name,
                User.role,
                User.therapist_id,
                User.active,
                User.password_hash,
                User.totp_enabled_at,
                User.timezone,
            ).order_by(User.id)
        ).all(),
        "consents": db.session.scalar(select(func.count(ConsentRecord.id))),
        "closures": db.session.scalar(select(func.count(ConsentClosure.id))),
        "links": db.session.scalar(select(func.count(FamilyLink.id))),
        "emails": db.session.scalar(select(func.count(OutboxEmail.id))),
        "tokens": db.session.scalar(select(func.count(AccountToken.id))),
        "program": db.session.execute(select(Program.__table__)).all(),
        "ended_sessions": db.session.scalar(
            select(func.count(UserSession.id)).where(UserSession.ended_at.is_not(None))
        ),
    }


def _snapshot(app) -> dict:
    with app.app_context():
        return state_snapshot()


@pytest.mark.parametrize(("endpoint", "method"), sorted(EXPECTED))
def test_each_route_answers_each_person_as_the_table_says(signed_in_world, endpoint, method):
    app, world = signed_in_world.app, signed_in_world.world
    clients = {actor: signed_in_world.client(actor) for actor in ACTORS}
    url = _url(app, endpoint, world)
    before = _snapshot(app)
    wrong = {}
    may_see = MAY_SEE_PATIENT | ({"admin"} if (endpoint, method) in ADMIN_SEES_ACCOUNTS else set())
    may_see_other = MAY_SEE_OTHER_PATIENT | may_see - MAY_SEE_PATIENT
    for actor in ACTORS:
        client = clients[actor]
        response = client.get(url) if method == "GET" else client.post(url, data=EXTRA_FIELDS)
        expected = EXPECTED[(endpoint, method)][actor]
        if response.status_code != expected:
            wrong[actor] = (response.status_code, expected)
        body = response.get_data(as_text=True)
        response.close()
        if actor not in may_see and "Zyxwvutsky" in body:
            wrong[actor] = "shows the patient's name"
        if actor not in may_see_other and "Qwertyplonk" in body:
            wrong[actor] = "shows the other patient's name"
    assert not wrong, f"{method} {url}: actor -> (got, expected): {wrong}"
    if method == "POST" and endpoint != "auth.logout":
        # Only refused or empty forms were sent: nothing may have changed.
        assert _snapshot(app) == before


def _user_by_email(app, email):
    with app.app_context():
        return db.session.scalar(select(User).where(User.email == email))


def test_sign_up_ignores_a_role_or_ids_sent_with_the_form(app, client):
    client.post("/register", data={**GOOD, **EXTRA_FIELDS})
    user = _user_by_email(app, "maria@example.org")
    assert user.role == Role.FAMILY and user.therapist_id is None


def test_enrolling_a_patient_ignores_a_therapist_id_sent_with_the_form(app):
    world = build_world(app)
    client = app.test_client()
    AuthActions(client, app).login(world.emails["therapist"])
    response = client.post(
        "/therapist/patients",
        data={
            "name": "New Patient",
            "email": "new.patient@example.org",
            "episode_start": "2026-11-01",
            **EXTRA_FIELDS,
            "therapist_id": str(world.ids["other_therapist"]),
        },
    )
    assert response.status_code == 302
    user = _user_by_email(app, "new.patient@example.org")
    assert user.role == Role.PATIENT and user.therapist_id == world.ids["therapist"]


def test_inviting_a_therapist_ignores_a_role_sent_with_the_form(app):
    world = build_world(app)
    client = app.test_client()
    AuthActions(client, app).login(world.emails["admin"])
    response = client.post(
        "/admin/therapists",
        data={"name": "New Therapist", "email": "new.t@example.org", **EXTRA_FIELDS},
    )
    assert response.status_code == 302
    assert _user_by_email(app, "new.t@example.org").role == Role.THERAPIST


def test_denials_of_other_roles_pages_are_audited(app):
    world = build_world(app)
    client = app.test_client()
    AuthActions(client, app).login(world.emails["family_consented"])
    client.get("/admin/audit")
    with app.app_context():
        denied = db.session.scalar(
            select(AuditEvent).where(
                AuditEvent.action == "access.denied",
                AuditEvent.actor_id == world.ids["family_consented"],
            )
        )
    assert denied is not None and denied.outcome == "denied"
