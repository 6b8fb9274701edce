"""The oracle's world: people made and changed only through the app's real operations
(services, as the views and commands call them), and every page and email each person can
reach, read back through the test client.

Nothing here decides who may see what: that is the app's job (checked) and the model's
(tests/privacy/model.py, the verdicts).
"""

from __future__ import annotations

import re
import secrets
import shutil
import string
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path

from flask import Flask
from flask_login.utils import _create_identifier
from sqlalchemy import func, select

from familylink.extensions import db
from familylink.models import (
    AuditEvent,
    ConsentRecord,
    EpisodeEndReason,
    LearningModule,
    OutboxEmail,
    OutboxStatus,
    PracticeEntry,
    ProgressUpdate,
    Role,
    Scope,
    SeatStatus,
    User,
)
from familylink.models.scheduling import Appointment, AppointmentFamily
from familylink.services import (
    accounts,
    attendance,
    booking,
    consent,
    episodes,
    progress_updates,
    reminders,
    sessions,
)
from familylink.services.booking.rooms import room_name
from familylink.services.calendar import feeds
from familylink.services.errors import DomainError, NotFound
from familylink.services.learning import assignments, content, practice, progress
from familylink.services.program import forget_cached_program, program_row
from tests.booking_setup import add_weekday_hours, create_session_types
from tests.factories import PASSWORD, create_user

# Two readings are enough to tell reflections apart; loading all ten costs time per example.
READINGS = ("01-what-iop-is.md", "06-boundaries.md")

# Who is in every world: two therapists, a patient each, and three family members. Maria
# may be linked to both patients (of different therapists); Luis only to the first, Ana
# only to the second.
THERAPISTS = ("T1", "T2")
PATIENTS = {"P1": "T1", "P2": "T2"}
FAMILY = {"F1": ("P1", "P2"), "F2": ("P1",), "F3": ("P2",)}
FAMILY_SURNAMES = {"F1": "Alvarez", "F2": "Okafor", "F3": "Lindqvist"}
# Each therapist's sessions start at their own minute past the hour (availability windows and
# groups start there; a 50-minute session plus the 10-minute buffer keeps every slot on it),
# and each therapist has one patient: a rendered time ending in that minute ("4:07 PM", or
# "T160700Z" in a calendar file) is that patient's session time. Every other instant in the
# world (the clock, signatures, expiries) falls on the hour.
SESSION_MINUTE = {"T1": 7, "T2": 23}
# The program's video rooms (each therapist's group is by video): a page or email showing this
# address, or a session's room token, shows a room, which only the join link may open (rule 17).
ROOM_HOST = "rooms.example.org"
ROOM_TEMPLATE = f"https://{ROOM_HOST}/fl-{{room}}"


def marker(prefix: str) -> str:
    """A word no page would print by chance: a capitalised run of random letters."""
    return prefix + "".join(secrets.choice(string.ascii_lowercase) for _ in range(7))


def update_text(word: str) -> str:
    """A progress update's text, long enough and plain, carrying its version's marker."""
    return f"This week the family talks went well, and {word} came up twice."


def readings_directory(tmp: Path) -> Path:
    source = content.CONTENT_DIR
    tmp.mkdir(parents=True, exist_ok=True)
    for name in READINGS:
        shutil.copy(source / name, tmp / name)
    return tmp


@dataclass
class Page:
    viewer: str
    where: str  # a path, or "email #id"
    text: str
    scope: str | None = None  # the kind of information the page is about, when it is one
    # The audit rows its request wrote: ids after the first, up to the second (read for
    # family members' pages only).
    audited: tuple[int, int] | None = None
    # An email's (patient, scope) that the sender checks again when it sends it (rule 9).
    held_for: tuple[str, str] | None = None
    # A join link's answer: it redirected to the room.
    entered: bool = False


@dataclass
class World:
    app: Flask
    context: object = None  # the app context the world's operations run in
    ids: dict[str, int] = field(default_factory=dict)  # cast name -> user id
    markers: dict[str, str] = field(default_factory=dict)  # patient -> marker in their name
    names: dict[str, str] = field(default_factory=dict)  # family member -> full name (a marker)
    feed_tokens: dict[str, str] = field(default_factory=dict)
    groups: dict[str, int] = field(default_factory=dict)  # therapist -> group appointment id
    modules: dict[str, tuple[int, str]] = field(default_factory=dict)  # slug -> (id, slug)
    private_type: int = 0
    # A video session's join token -> (its therapist, start, end): the world's two groups.
    video: dict[str, tuple[str, datetime, datetime]] = field(default_factory=dict)

    @property
    def now(self) -> datetime:
        return self.app.config["NOW_OVERRIDE"].instant

    def user(self, name: str) -> User:
        return db.session.get(User, self.ids[name])

    def name_of(self, user_id: int | None) -> str | None:
        return next((n for n, i in self.ids.items() if i == user_id), None)

    # --- building

    def build_cast(self, readings: Path) -> None:
        """Staff, enrolment of one patient per therapist, session types, one small group per
        therapist, and two published readings."""
        admin = create_user(Role.ADMIN, name="Admin Oracle", email="admin@example.org")
        program_row().video_room_template = ROOM_TEMPLATE
        db.session.flush()
        forget_cached_program()
        for name in THERAPISTS:
            therapist = create_user(Role.THERAPIST, name=f"Dr {name} Oracle")
            self.ids[name] = therapist.id
            minute = SESSION_MINUTE[name]
            add_weekday_hours(therapist, start=time(9, minute), end=time(17, minute))
        for member, surname in FAMILY_SURNAMES.items():
            self.names[member] = f"{marker('Fam')} {surname}"
        for name, therapist in PATIENTS.items():
            self.markers[name] = marker("Pat")
            patient = accounts.enrol_patient(
                self.user(therapist),
                name=f"{self.markers[name]} Oracle",
                email=f"{name.lower()}@example.org",
                episode_start=(self.now - timedelta(days=7)).date(),
                now=self.now,
            )
            accounts.accept_invitation(
                self._token(patient.email, "invitation"), PASSWORD, now=self.now
            )
            self.ids[name] = patient.id
        private, group = create_session_types()
        self.private_type = private.id
        for name in THERAPISTS:
            first = (self.now + timedelta(days=3)).date()
            [occurrence] = booking.schedule_group(
                actor=self.user(name),
                session_type_id=group.id,
                first_day=first,
                start_time=time(18 if name == "T1" else 19, SESSION_MINUTE[name]),
                weeks=1,
                capacity=2,
                now=self.now,
            )
            self.groups[name] = occurrence.id
            self.video[occurrence.join_token] = (name, occurrence.starts_at, occurrence.ends_at)
        content.load_modules(now=self.now, directory=readings)
        for module in db.session.scalars(select(LearningModule)):
            self.modules[module.slug] = (module.id, module.slug)
        del admin
        db.session.commit()

    def _token(self, address: str, path: str, patient: str | None = None) -> str:
        """The link token of `path` kind in the newest queued email to `address` (about
        `patient`, when given)."""
        query = select(OutboxEmail).where(
            OutboxEmail.to_address == address.lower(), OutboxEmail.status == OutboxStatus.PENDING
        )
        if patient is not None:
            query = query.where(OutboxEmail.patient_id == self.ids[patient])
        for email in db.session.scalars(query.order_by(OutboxEmail.id.desc())):
            found = re.search(rf"/{path}/([A-Za-z0-9_\-]+)", email.text_body)
            if found:
                return found.group(1)
        return ""

    def attempt(self, action, *args, **kwargs):
        """Call an operation as a view does: in a savepoint, a refusal undoes it; then commit.
        Returns (result, None) or (None, the refusal: a DomainError, or NotFound for what
        the gate does not let this person reach)."""
        try:
            with db.session.begin_nested():
                result = action(*args, **kwargs)
        except (DomainError, NotFound) as refusal:
            db.session.commit()
            return None, refusal
        db.session.commit()
        return result, None

    def address(self, member: str) -> str:
        user = self.user(member) if member in self.ids else None
        return user.email if user else f"{member.lower()}@example.org"

    def sign(self, patient, member, scopes, last_day, family_visible, on_paper):
        details = consent.ConsentDetails(
            recipient_name=self.names[member],
            recipient_relationship="Family",
            recipient_email=self.address(member),
            scopes=[Scope(s) for s in scopes],
            expiry_kind="date" if last_day else "episode_end",
            expiry_date=last_day,
            expiry_days_after_episode=None if last_day else 0,
            signature_name=self.user(patient).name,
            understood=True,
            family_visible=family_visible,
        )
        if on_paper:
            therapist = self.user(PATIENTS[patient])
            today = self.now.astimezone(_zone(self)).date()
            return self.attempt(
                consent.record_paper_consent,
                therapist,
                self.ids[patient],
                details,
                signed_on=today,
                attested=True,
                now=self.now,
            )
        return self.attempt(consent.sign_consent, self.user(patient), details, now=self.now)

    def accept(self, patient: str, member: str):
        """The member follows the newest invitation link from `patient`, registering the
        first time."""
        raw = self._token(self.address(member), "family/join", patient)
        if not raw:
            return None, "no invitation"
        if member in self.ids:
            return self.attempt(consent.accept_invitation, raw, self.user(member), now=self.now)
        user, refused = self.attempt(
            consent.register_through_invitation,
            raw,
            name=self.names[member],
            password=PASSWORD,
            timezone="America/Chicago",
            now=self.now,
        )
        if user is not None:
            self.ids[member] = user.id
            self.feed_tokens[member] = feeds.turn_on_feed(user, now=self.now)
            db.session.commit()
        return user, refused

    def open_consent_id(self, patient: str, member: str) -> int | None:
        return db.session.scalar(
            select(ConsentRecord.id)
            .where(
                ConsentRecord.patient_id == self.ids[patient],
                ConsentRecord.recipient_email == self.address(member),
            )
            .order_by(ConsentRecord.id.desc())
        )

    def discharge(self, patient: str, ended_on):
        """The therapist ends the patient's episode of care on `ended_on`."""
        return self.attempt(
            episodes.discharge,
            self.user(PATIENTS[patient]),
            self.ids[patient],
            ended_on=ended_on,
            reason=EpisodeEndReason.COMPLETED.value,
            now=self.now,
        )

    def readmit(self, patient: str, started_on):
        return self.attempt(
            episodes.readmit,
            self.user(PATIENTS[patient]),
            self.ids[patient],
            started_on=started_on,
            now=self.now,
        )

    def revoke(self, patient: str, member: str, by_therapist: bool):
        consent_id = self.open_consent_id(patient, member)
        if consent_id is None:
            return None, "no consent"
        if by_therapist:
            return self.attempt(
                consent.revoke_consent,
                self.user(PATIENTS[patient]),
                consent_id,
                now=self.now,
                method="written",
            )
        return self.attempt(consent.revoke_consent, self.user(patient), consent_id, now=self.now)

    def sweeps(self) -> None:
        """What `flask mail worker` runs before delivering: expiries, offers, readings,
        reminders."""
        consent.sweep_consents(self.now)
        booking.sweep(self.now)
        assignments.release_due(self.now)
        reminders.run_sweep(self.now)
        db.session.commit()

    def book_private(self, patient: str, member: str, pick: int):
        therapist = self.ids[PATIENTS[patient]]
        from familylink.models import SessionType

        free = booking.slots_for(
            therapist, db.session.get(SessionType, self.private_type), now=self.now
        )
        if not free:
            return None, "no slot"
        return self.attempt(
            booking.book_private,
            actor=self.user(member),
            patient_id=self.ids[patient],
            session_type_id=self.private_type,
            starts_at=free[pick % len(free)],
            now=self.now,
        )

    def take_group_seat(self, patient: str, member: str):
        group = self.groups[PATIENTS[patient]]
        seat, refused = self.attempt(
            booking.book_group_seat,
            actor=self.user(member),
            patient_id=self.ids[patient],
            appointment_id=group,
            now=self.now,
        )
        if seat is None:
            return self.attempt(
                booking.join_waitlist,
                actor=self.user(member),
                patient_id=self.ids[patient],
                appointment_id=group,
                now=self.now,
            )
        return seat, refused

    def assign(self, patient: str, member: str, slug: str, note: str | None = None):
        """The therapist assigns the reading, with a note carrying its marker (`note`)."""
        return self.attempt(
            assignments.assign_modules,
            therapist=self.user(PATIENTS[patient]),
            patient_id=self.ids[patient],
            family_user_id=self.ids[member],
            module_ids=[self.modules[slug][0]],
            note=f"Before our next talk: {note}." if note else None,
            now=self.now,
        )

    def reflect(self, member: str, slug: str, text: str, share: bool, about: str):
        """The reflection on the reading about `about`, shared with their therapist or not."""
        module = db.session.get(LearningModule, self.modules[slug][0])
        return self.attempt(
            progress.save_progress,
            self.user(member),
            module,
            patient_id=self.ids[about],
            completed=True,
            reflection=text,
            share_with=self.ids[about] if share else None,
            now=self.now,
        )

    def write_practice(self, member, kind, word, about, entry_id=None):
        """The member saves a practice tool entry (`entry_id` None: a new one; a second
        safety plan is the first), its title and every answer carrying `word`, shared with
        `about`'s therapist or (None) with nobody: the tool's page, as the view calls it."""
        return self.attempt(
            practice.save_entry,
            self.user(member),
            kind,
            entry_id=entry_id,
            title=f"Notes {word}",
            answers={name: f"I wrote {word}." for name in practice.tool(kind).fields},
            share_with=self.ids[about] if about else None,
            now=self.now,
        )

    def draft_update(self, patient: str, member: str | None, word: str):
        """The patient's therapist writes a progress update for `member` or (None) for
        everyone it may be for, carrying `word`."""
        return self.attempt(
            progress_updates.draft_update,
            self.user(PATIENTS[patient]),
            self.ids[patient],
            text=update_text(word),
            family_user_id=self.ids[member] if member else None,
            now=self.now,
        )

    def revise_update(self, patient: str, update_id: int, word: str):
        return self.attempt(
            progress_updates.revise_update,
            self.user(PATIENTS[patient]),
            update_id,
            text=update_text(word),
            now=self.now,
        )

    def decide_update(self, patient: str, update_id: int, decision: str):
        """The patient answers about the version they read: the newest one."""
        version_id = db.session.get(ProgressUpdate, update_id).current.id
        return self.attempt(
            progress_updates.decide,
            self.user(patient),
            update_id,
            version_id=version_id,
            decision=decision,
            note="Please say it more simply." if decision == "changes" else None,
            now=self.now,
        )

    def delete_practice(self, member: str, entry_id: int):
        return self.attempt(practice.delete_entry, self.user(member), entry_id, now=self.now)

    def next_session(self) -> datetime | None:
        """When the next session a family has a seat in begins."""
        return db.session.scalar(
            select(func.min(Appointment.starts_at))
            .join(AppointmentFamily, AppointmentFamily.appointment_id == Appointment.id)
            .where(Appointment.starts_at > self.now, AppointmentFamily.status == SeatStatus.BOOKED)
        )

    def started_seats(self) -> list[tuple[int, str]]:
        """(seat id, patient) of every booked seat whose session has started: those whose
        attendance a therapist may record."""
        rows = db.session.execute(
            select(AppointmentFamily.id, AppointmentFamily.patient_id)
            .join(Appointment, Appointment.id == AppointmentFamily.appointment_id)
            .where(
                Appointment.starts_at <= self.now,
                AppointmentFamily.status == SeatStatus.BOOKED,
            )
            .order_by(AppointmentFamily.id)
        ).all()
        return [(seat_id, self.name_of(patient_id)) for seat_id, patient_id in rows]

    def mark_attendance(self, therapist: str, seat_id: int, value: str):
        """The therapist's attendance action on the calendar page."""
        return self.attempt(
            booking.mark_attendance,
            actor=self.user(therapist),
            seat_id=seat_id,
            value=value,
            now=self.now,
        )

    def record_program_day(self, therapist: str, patient: str, day, status: str):
        """The therapist's program attendance page, saved for one patient and day."""
        return self.attempt(
            attendance.record_program_attendance,
            self.user(therapist),
            day,
            {self.ids[patient]: status},
            now=self.now,
        )

    def room_tokens(self) -> list[str]:
        """Every room's token and name: neither may reach a page."""
        made = [a for a in db.session.scalars(select(Appointment)) if a.room_token]
        return [a.room_token for a in made] + [room_name(a) for a in made]

    def change_email(self, member: str, new_address: str):
        user = self.user(member)
        _, refused = self.attempt(
            accounts.request_email_change,
            user,
            password=PASSWORD,
            new_email=new_address,
            now=self.now,
        )
        if refused:
            return None, refused
        return self.attempt(
            accounts.confirm_email_change, self._token(new_address, "email-change"), now=self.now
        )

    # --- reading back

    def pages_of(self, person: str) -> list[tuple[str, str | None]]:
        """Every page `person` can reach, with the kind of information it is about."""
        patients = [self.ids[p] for p in PATIENTS]
        seats = list(db.session.scalars(select(AppointmentFamily.id)))
        consents = list(db.session.scalars(select(ConsentRecord.id)))
        role = self.user(person).role
        pages: list[tuple[str, str | None]] = [("/", None), ("/help/crisis", None)]
        # Every join link in the world, followed by everyone (rule 17): an in-person session
        # holds a join token too, which must open nothing.
        tokens = db.session.scalars(
            select(Appointment.join_token)
            .where(Appointment.join_token.is_not(None))
            .order_by(Appointment.id)
        )
        pages += [(f"/join/{token}", SCHEDULING_SCOPE) for token in tokens]
        if role == Role.THERAPIST:
            pages += [(p, None) for p in ("/therapist/", "/therapist/calendar")]
            pages += [("/therapist/groups", None), ("/learn/therapist", None)]
            for pid in patients:
                pages += [(f"/therapist/patients/{pid}/family", None)]
                pages += [(f"/learn/therapist/patients/{pid}", None)]
            pages += [(f"/therapist/seats/{s}/reschedule", None) for s in seats]
            pages += [(f"/therapist/consents/{c}", None) for c in consents]
            pages += [(f"/therapist/patients/{pid}/updates", None) for pid in patients]
            updates = db.session.scalars(select(ProgressUpdate.id).order_by(ProgressUpdate.id))
            pages += [(f"/therapist/updates/{u}/revise", None) for u in updates]
        elif role == Role.PATIENT:
            pages += [
                (p, None)
                for p in (
                    "/patient/",
                    "/patient/consents",
                    "/patient/sessions",
                    "/patient/shared",
                    "/patient/updates",
                )
            ]
            pages += [(f"/patient/consents/{c}", None) for c in consents]
            pages += [(f"/booking/{s}", None) for s in seats]
        else:
            pages += [("/family/", None), ("/learn/", None)]
            pages += [(f"/family/patients/{pid}", None) for pid in patients]
            pages += [("/booking/", "scheduling"), ("/booking/groups", "scheduling")]
            pages += [(f"/booking/new?patient={pid}", "scheduling") for pid in patients]
            pages += [(f"/booking/{s}", "scheduling") for s in seats]
            pages += [(f"/booking/{s}/calendar.ics", "scheduling") for s in seats]
            pages += [(f"/learn/modules/{slug}", None) for slug in self.modules]
            # Every practice entry in the world: anyone else's answers the same 404.
            pages += [("/learn/practice/", None)]
            entries = db.session.scalars(select(PracticeEntry.id).order_by(PracticeEntry.id))
            pages += [(f"/learn/practice/{e}", None) for e in entries]
        return pages

    @contextmanager
    def requests(self):
        """Step out of the world's app context while the test client serves requests: a
        request reuses an app context it finds (its `g`, its database session), so the
        signed-in user of one request would leak into the next person's."""
        db.session.commit()
        self.context.pop()
        try:
            yield
        finally:
            self.context = self.app.app_context()
            self.context.push()

    def read_pages(self, person: str) -> list[Page]:
        client = self.app.test_client()
        _record, raw = sessions.start_session(self.user(person), now=self.now)
        paths = self.pages_of(person)
        token = self.feed_tokens.get(person)
        # Only disclosures to family members are checked against the audit log.
        audited = self.user(person).role == Role.FAMILY
        with self.requests():
            read = self._read(client, person, raw, paths, audited)
            if token:
                before = self._last_audit_id()
                response = self.app.test_client().get(f"/booking/feed/{token}.ics")
                assert response.status_code < 500
                text = response.get_data(as_text=True)
                rows = (before, self._last_audit_id())
                read.append(Page(person, "feed", text, "scheduling", rows))
        return read

    def _read(self, client, person, raw, paths, audited: bool) -> list[Page]:
        with self.app.test_request_context():
            identifier = _create_identifier()  # the "strong" session protection's check
        with client.session_transaction() as cookie:
            cookie["_id"] = identifier
            cookie["_user_id"] = str(self.ids[person])
            cookie["_fresh"] = True
            cookie["sid"] = raw
            cookie["_permanent"] = True
        read = []
        before = self._last_audit_id() if audited else None
        for path, scope in paths:
            joining = path.startswith("/join/")  # its redirect leads out, to the room
            response = client.get(path, follow_redirects=not joining)
            assert response.status_code < 500, f"{person} {path}: {response.status_code}"
            after = self._last_audit_id() if audited else None
            entered = joining and response.status_code in (301, 302, 303, 307, 308)
            if joining:
                assert entered or response.status_code in (200, 404), (person, path, response)
            text = "" if entered else response.get_data(as_text=True)
            page = Page(person, path, text, scope, (before, after) if audited else None)
            page.entered = entered
            read.append(page)
            before = after
        return read

    def disclosures(self, member: str, first: int, last: int) -> list[tuple[int, str]]:
        """(audit row id, patient) of the disclosures to `member` recorded in rows after
        `first` up to `last`: read from the audit table itself, whatever wrote them."""
        rows = db.session.execute(
            select(AuditEvent.id, AuditEvent.patient_id).where(
                AuditEvent.id > first,
                AuditEvent.id <= last,
                AuditEvent.recipient_id == self.ids[member],
                AuditEvent.outcome == "success",
            )
        ).all()
        return [(row_id, self.name_of(patient_id)) for row_id, patient_id in rows]

    def _last_audit_id(self) -> int:
        """The newest audit row's id, read between requests (in a context of its own): the
        rows a page wrote are those after the one before it, up to this."""
        with self.app.app_context():
            return db.session.scalar(select(func.max(AuditEvent.id))) or 0

    def queued_emails(self) -> list[tuple[str | None, str, Page]]:
        """Every email waiting to be sent: (recipient in the cast or None, address, body)."""
        found = []
        for email in db.session.scalars(
            select(OutboxEmail).where(OutboxEmail.status == OutboxStatus.PENDING)
        ):
            attachment = (email.attachment_data or b"").decode("utf-8", "replace")
            text = "\n".join((email.subject, email.text_body, email.html_body, attachment))
            viewer = self.name_of(email.to_user_id) or next(
                (n for n in self.ids if self.address(n) == email.to_address), None
            )
            page = Page(viewer or "", f"email #{email.id}", text)
            if email.patient_id is not None and email.required_scope:
                page.held_for = (self.name_of(email.patient_id), str(email.required_scope))
            found.append((viewer, email.to_address, page))
        return found


SCHEDULING_SCOPE = "scheduling"


def _zone(world: World):
    from zoneinfo import ZoneInfo

    from familylink.services.program import get_program

    return ZoneInfo(get_program().timezone)
