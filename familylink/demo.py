"""Demo data: a program with therapists, patients, families and their consents."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from familylink.extensions import db
from familylink.models import (
    Appointment,
    AppointmentAttendee,
    AppointmentFamily,
    Episode,
    Role,
    Scope,
    User,
)
from familylink.services.passwords import hash_password
from familylink.services.program import forget_cached_program, get_program, program_row

DOMAIN = "example.org"


def has_accounts() -> bool:
    return bool(db.session.scalar(select(func.count(User.id))))


def _person(role, name, email, password_hash, now, **extra) -> User:
    user = User(
        role=role,
        name=name,
        email=email,
        password_hash=password_hash,
        verified_at=now,
        timezone=extra.pop("timezone", "America/New_York"),
        **extra,
    )
    db.session.add(user)
    return user


def seed(*, password: str, now: datetime, progress: Callable[[str], None] = print) -> list:
    """Create the demo and return (role, name, email) for each account."""
    program = program_row()
    program.name = "Riverside Family Program"
    program.sender_name = "Riverside Family Sessions"
    program.timezone = "America/New_York"
    # Every video session gets its own room there; families only get FamilyLink join links.
    program.video_room_template = "https://meet.example-clinic.org/{room}"
    db.session.flush()
    forget_cached_program()
    hashed = hash_password(password)

    progress("Creating staff…")
    admin = _person(Role.ADMIN, "Alex Admin", f"admin@{DOMAIN}", hashed, now)
    lee = _person(Role.THERAPIST, "Dr. Grace Lee", f"lee@{DOMAIN}", hashed, now)
    patel = _person(Role.THERAPIST, "Dr. Ravi Patel", f"patel@{DOMAIN}", hashed, now)
    # Read-only: the program overview (a small demo: most of its counts read "fewer than 11").
    director = _person(Role.DIRECTOR, "Dana Director", f"director@{DOMAIN}", hashed, now)
    db.session.flush()

    progress("Creating patients…")
    start = now - timedelta(days=21)
    jordan = _person(
        Role.PATIENT,
        "Jordan Rivera",
        f"jordan@{DOMAIN}",
        hashed,
        now,
        therapist_id=lee.id,
    )
    sam = _person(
        Role.PATIENT,
        "Sam Okafor",
        f"sam@{DOMAIN}",
        hashed,
        now,
        therapist_id=lee.id,
    )
    casey = _person(
        Role.PATIENT,
        "Casey Nguyen",
        f"casey@{DOMAIN}",
        hashed,
        now,
        therapist_id=patel.id,
    )
    riley = _person(
        Role.PATIENT,
        "Riley Brooks",
        f"riley@{DOMAIN}",
        hashed,
        now,
        therapist_id=patel.id,
    )

    morgan = _person(
        Role.PATIENT,
        "Morgan Ellis",
        f"morgan@{DOMAIN}",
        hashed,
        now,
        therapist_id=lee.id,
    )
    db.session.flush()
    started = {
        jordan: start,
        sam: now - timedelta(days=120),  # long enough for a consent to have expired
        casey: start,
        riley: start,
        morgan: now - timedelta(days=90),  # discharged since: see seed_discharge
    }
    for patient, started_on in started.items():  # enrolment starts episode 1
        db.session.add(Episode(patient_id=patient.id, number=1, started_on=started_on))

    progress("Creating family members…")
    family = [
        _person(Role.FAMILY, "Maria Rivera", f"maria@{DOMAIN}", hashed, now),
        _person(
            Role.FAMILY,
            "Luis Rivera",
            f"luis@{DOMAIN}",
            hashed,
            now,
            timezone="America/Los_Angeles",
        ),
        _person(Role.FAMILY, "Ada Okafor", f"ada@{DOMAIN}", hashed, now),
        _person(Role.FAMILY, "Kim Nguyen", f"kim@{DOMAIN}", hashed, now),
        _person(Role.FAMILY, "Pat Brooks", f"pat@{DOMAIN}", hashed, now),
        _person(Role.FAMILY, "Drew Hale", f"drew@{DOMAIN}", hashed, now),
    ]
    robin = _person(Role.FAMILY, "Robin Ellis", f"robin@{DOMAIN}", hashed, now)
    db.session.flush()
    seed_discharge(lee, morgan, robin, now=now, progress=progress)
    seed_consents(jordan, sam, casey, riley, patel, family, now=now, progress=progress)
    seed_program_attendance(lee, jordan, now=now, progress=progress)
    seed_scheduling(now=now, progress=progress)
    seed_learning(now=now, progress=progress)
    seed_progress_updates(lee, sam, ada=family[2], now=now, progress=progress)
    people = [admin, director, lee, patel, jordan, sam, casey, riley, morgan, *family, robin]
    return [(p.role, p.name, p.email) for p in people]


def seed_learning(*, now: datetime, progress: Callable[[str], None] = print) -> None:
    """Load the learning modules; start Maria's weekly sequence about Jordan if she may see him.

    Without an active consent from Jordan to Maria (none exist yet on a bare install), only
    the modules are loaded.
    """
    from familylink.services import consent, learning

    progress("Loading learning modules…")
    learning.load_modules(now=now)
    people = {
        u.email: u
        for u in db.session.scalars(
            select(User).where(User.email.in_([f"{n}@{DOMAIN}" for n in ("maria", "jordan")]))
        )
    }
    maria, jordan = people.get(f"maria@{DOMAIN}"), people.get(f"jordan@{DOMAIN}")
    if maria is None or jordan is None or jordan.therapist_id is None:
        return
    if not consent.may_disclose(maria.id, jordan.id, None, now=now, audit_access=False):
        return
    therapist = db.session.get(User, jordan.therapist_id)
    learning.apply_sequence(
        therapist=therapist, patient_id=jordan.id, family_user_id=maria.id, now=now
    )


def seed_progress_updates(lee, sam, *, ada, now, progress) -> None:
    """Ada (her consent includes general progress) reads one update Sam approved; a second
    one waits for Sam to read it, so both sides of the feature show."""
    from familylink.services import progress_updates

    progress("Writing progress updates…")
    approved = progress_updates.draft_update(
        lee,
        sam.id,
        text=(
            "What we worked on: noticing stress early and asking for a break.\n\n"
            "How the family can help this week: plan one relaxed meal together, "
            "with phones away.\n\n"
            "What is next: practising how to say no to plans that feel like too much."
        ),
        family_user_id=ada.id,
        now=now - timedelta(days=2),
    )
    progress_updates.decide(
        sam,
        approved.id,
        version_id=approved.current.id,
        decision=progress_updates.Decision.APPROVE,
        note=None,
        now=now - timedelta(days=2) + timedelta(hours=3),
    )
    progress_updates.draft_update(
        lee,
        sam.id,
        text=(
            "What we worked on: keeping a simple daily routine.\n\n"
            "How the family can help this week: a short check-in call midweek.\n\n"
            "What is next: setting one small goal for the weekend."
        ),
        family_user_id=None,
        now=now - timedelta(hours=5),
    )


def _consent(
    patient,
    family_member,
    relationship,
    scopes,
    *,
    signed,
    ends=None,
    days_after_episode=None,
    recorded_by=None,
    family_visible=False,
):
    """Sign (or record from paper) through the services, and accept the invitation."""
    from familylink.services import consent

    details = consent.ConsentDetails(
        recipient_name=family_member.name,
        recipient_relationship=relationship,
        recipient_email=family_member.email,
        scopes=list(scopes),
        expiry_kind="date" if ends else "episode_end",
        expiry_date=ends.date() if ends else None,
        expiry_days_after_episode=days_after_episode,
        signature_name=patient.name,
        understood=True,
        family_visible=family_visible,
    )
    origin = {"ip": "127.0.0.1", "user_agent": "demo data"}
    if recorded_by is not None:
        record = consent.record_paper_consent(
            recorded_by,
            patient.id,
            details,
            signed_on=signed.astimezone(ZoneInfo(get_program().timezone)).date(),
            attested=True,
            now=signed,
            **origin,
        )
    else:
        record = consent.sign_consent(patient, details, now=signed, **origin)
    consent.link_family_member(record, family_member, now=signed + timedelta(hours=2))
    return record


def seed_discharge(lee, morgan, robin, *, now, progress) -> None:
    """Morgan was discharged ten days ago; Robin's consent, "until the end of this episode,
    plus 3 days", ended three days later, when the consent sweep reached it."""
    from familylink.services import consent, episodes

    progress("Discharging a patient…")
    _consent(
        morgan,
        robin,
        "Partner",
        (Scope.SCHEDULING,),
        signed=now - timedelta(days=60),
        days_after_episode=3,
    )
    zone = ZoneInfo(get_program().timezone)
    ended = episodes.discharge(
        lee,
        morgan.id,
        ended_on=(now - timedelta(days=10)).astimezone(zone).date(),
        reason="completed",
        now=now - timedelta(days=10),
    )
    consent.sweep_consents(ended.ended_on + timedelta(days=3))


def seed_program_attendance(lee, jordan, *, now, progress) -> None:
    """Jordan's last five weekday program days, recorded by Dr. Lee (one absence excused, then
    corrected from absent, as a therapist would): Maria and Luis hold the attendance scope and
    see the summary on Jordan's page; Ada, Sam's sister, does not see Jordan at all."""
    from familylink.services import attendance
    from familylink.services.program import local_day

    progress("Recording program attendance…")
    today = local_day(now)
    weekdays = [today - timedelta(days=n) for n in range(1, 10)]
    days = [day for day in weekdays if day.weekday() < 5][:5]
    for day, status in zip(
        days, ["attended", "attended", "absent", "attended", "attended"], strict=True
    ):
        attendance.record_program_attendance(lee, day, {jordan.id: status}, now=now)
    attendance.record_program_attendance(lee, days[2], {jordan.id: "excused"}, now=now)


def seed_consents(jordan, sam, casey, riley, patel, family, *, now, progress) -> None:
    """Active, expiring, revoked and expired consents; Drew has none."""
    from familylink.services import consent

    maria, luis, ada, kim, pat, _drew = family
    progress("Signing consents…")
    week_ago = now - timedelta(days=7)
    for parent, relationship in ((maria, "Mother"), (luis, "Father")):
        _consent(
            jordan,
            parent,
            relationship,
            (Scope.SCHEDULING, Scope.ATTENDANCE),
            signed=week_ago,
            ends=now + timedelta(days=180),
            family_visible=True,  # Jordan's parents may see and invite each other
        )
    # Ada's first consent ran out; Sam signed a new one the day after.
    _consent(
        sam,
        ada,
        "Sister",
        (Scope.SCHEDULING,),
        signed=now - timedelta(days=100),
        ends=now - timedelta(days=6),
    )
    consent.sweep_consents(now - timedelta(days=4))
    _consent(
        sam,
        ada,
        "Sister",
        (Scope.SCHEDULING, Scope.ATTENDANCE, Scope.PROGRESS),
        signed=now - timedelta(days=3),
        ends=now + timedelta(days=300),
    )
    _consent(
        casey,
        kim,
        "Partner",
        (Scope.SCHEDULING,),
        signed=now - timedelta(days=60),
        ends=now + timedelta(days=10),
    )
    # Riley signed on paper (Dr. Patel recorded it), then revoked it in the portal.
    revoked = _consent(
        riley,
        pat,
        "Parent",
        (Scope.SCHEDULING, Scope.ATTENDANCE),
        signed=now - timedelta(days=14),
        ends=now + timedelta(days=120),
        recorded_by=patel,
    )
    consent.revoke_consent(riley, revoked.id, now=now - timedelta(days=2))
    # Reminders for consents ending soon (Kim's), as the mail worker would queue them.
    consent.sweep_consents(now)


def seed_scheduling(*, now: datetime, progress: Callable[[str], None] = print) -> None:
    """Session types, Dr. Lee's and Dr. Patel's hours, a weekly group and a few bookings."""
    from datetime import date, time
    from zoneinfo import ZoneInfo

    from familylink.models import AvailabilityOverride, AvailabilityWindow, SessionType
    from familylink.services import booking

    progress("Creating session types, availability and sessions…")
    people = {u.email.split("@")[0]: u for u in db.session.scalars(select(User))}
    lee, patel = people["lee"], people["patel"]
    private = SessionType(
        name="Family session", duration_minutes=50, capacity=1, location="Room 2, 2nd floor"
    )
    video = SessionType(
        name="Family session (video)",
        duration_minutes=50,
        capacity=1,
        mode="video",
    )
    group = SessionType(
        name="Multi-family group", duration_minutes=90, capacity=8, location="Community room"
    )
    db.session.add_all([private, video, group])
    for therapist, days, start, end in (
        (lee, range(0, 5), time(9), time(17)),
        (patel, (1, 3), time(12), time(19)),
    ):
        for weekday in days:
            db.session.add(
                AvailabilityWindow(
                    therapist_id=therapist.id, weekday=weekday, start_time=start, end_time=end
                )
            )
    zone = ZoneInfo(get_program().timezone)
    today = now.astimezone(zone).date()
    # The program closes on Christmas Day and New Year's Day: time off for every therapist,
    # so the families' week picker shows those days without free times.
    for therapist in (lee, patel):
        for closed in (date(today.year, 12, 25), date(today.year + 1, 1, 1)):
            db.session.add(AvailabilityOverride(therapist_id=therapist.id, day=closed, off=True))
    db.session.flush()
    next_wednesday = today + timedelta(days=(2 - today.weekday()) % 7 or 7)
    groups = booking.schedule_group(
        actor=lee,
        session_type_id=group.id,
        first_day=next_wednesday,
        start_time=time(17, 30),
        weeks=8,
        now=now,
    )
    # Bookings made "a while ago", so tomorrow's session is not refused for short notice.
    earlier = now - timedelta(days=3)
    tomorrow = today + timedelta(days=1)
    while tomorrow.weekday() > 4:
        tomorrow += timedelta(days=1)
    jordan, maria, luis = people["jordan"], people["maria"], people["luis"]
    sam, ada = people["sam"], people["ada"]

    def book(session_type, day, at, patient, attendees, *, slug, note=None):
        starts = datetime.combine(day, at, tzinfo=zone)
        appointment = _private_session(lee, session_type, starts, slug, by=attendees[0], at=earlier)
        _seat(appointment, patient, attendees, by=attendees[0], at=earlier, note=note)

    book(
        private,
        tomorrow,
        time(10),
        jordan,
        [maria, luis],
        slug="jordan",
        note="We'd like to talk about weekends at home.",
    )
    # The same afternoon by video, in its own room (the program's room template).
    book(video, tomorrow, time(14), jordan, [maria], slug="jordan-video")
    # The week after, the same time: the calendar's next week is never empty.
    book(private, tomorrow + timedelta(days=7), time(10), jordan, [maria], slug="jordan-next")
    # Earlier this week (unless today is Monday, when tomorrow is this week): the therapist's
    # calendar for this week is never empty, even on a Friday evening or a weekend.
    before = [today - timedelta(days=n) for n in range(1, today.weekday() + 1)]
    past_weekdays = [day for day in before if day.weekday() < 5]
    if past_weekdays:
        book(private, past_weekdays[0], time(11), sam, [ada], slug="sam")
    _seat(groups[0], sam, (ada,), by=ada, at=earlier)
    db.session.flush()
    seed_weekly_series(lee, jordan, maria, private, today=today, now=now)


def seed_weekly_series(lee, jordan, maria, private, *, today, now) -> None:
    """Dr. Lee books Jordan's family every Thursday at 11:00 for six weeks (a weekly series),
    through the same service as her booking page; weeks from the first one that can't be
    booked (a closure, say) are left out, so the demo always seeds."""
    from datetime import time
    from zoneinfo import ZoneInfo

    from familylink.services import booking

    thursday = today + timedelta(days=(3 - today.weekday()) % 7 or 7)
    first = datetime.combine(thursday, time(11), tzinfo=ZoneInfo(lee.timezone))
    choices = {
        "actor": lee,
        "patient_id": jordan.id,
        "session_type_id": private.id,
        "first_start": first,
        "attendee_ids": [maria.id],
        "now": now,
    }
    plan = booking.plan_series(weeks=6, **choices)
    weeks = next((n for n, o in enumerate(plan.occurrences) if o.problem), 6)
    if weeks >= booking.MIN_WEEKS:
        booking.book_series(weeks=weeks, **choices)


def _private_session(therapist, session_type, starts, name, *, by, at):
    """A session of `session_type` for one family, booked by `by` at `at`."""
    uid = f"demo-{starts:%Y%m%d}-{name}@familylink"
    appointment = Appointment.private(session_type, starts, therapist.id, by=by, at=at, uid=uid)
    db.session.add(appointment)
    return appointment


def _seat(appointment, patient, attendees, *, by, at, note=None):
    """`patient`'s family's seat in `appointment`, booked by `by` at `at`, with who comes."""
    seat = AppointmentFamily(
        appointment=appointment, patient_id=patient.id, note=note, booked_by_id=by.id, created_at=at
    )
    db.session.add(seat)
    for person in attendees:
        db.session.add(AppointmentAttendee(seat=seat, user_id=person.id, added_at=at))
    return seat
