"""The privacy oracle's own model of who may see what, written from the consent rules of the
product design (the "consent rule" and "rules that always hold"), never from the app's code.

It imports nothing from `familylink`: it is told what happened (a consent signed, accepted,
revoked; the clock moved; a reflection written) and answers, for a person and a patient,
whether that patient's data may appear on a page that person opens or in an email to them.
It only says what is *allowed*; the test checks that nothing else appears.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SCHEDULING, ATTENDANCE, PROGRESS = "scheduling", "attendance", "progress"
SCOPES = (SCHEDULING, ATTENDANCE, PROGRESS)


@dataclass
class Consent:
    """One signed consent: from a patient to an address, with scopes and an end rule."""

    patient: str
    address: str
    scopes: frozenset[str]
    ends_at: datetime | None  # a date's end; None: "end of this episode (+ N days)"
    family_visible: bool
    # Whose it is: the account that accepted its invitation, or the linked member it renews.
    member: str | None = None
    closed: str | None = None  # "revoked", "expired", "superseded"
    episode: int = 1  # the patient's episode of care when it was signed
    recipient: str | None = None  # the person the patient named on it (who they typed)

    def in_force(self, now: datetime) -> bool:
        """Not revoked, superseded or swept, and its end date not reached: an ended consent
        ends at once, whether or not a sweep has run yet."""
        return self.closed is None and (self.ends_at is None or now < self.ends_at)


@dataclass
class Update:
    """A progress update about a patient (rule 19): its versions' markers, oldest first."""

    patient: str
    recipients: frozenset[str]
    versions: list[str]
    status: str = "awaiting"  # "changes", "released", "declined"
    approved: str | None = None  # the marker of the version the patient approved
    # Recipients whose consent covered progress when it was released, less those whose
    # access about the patient has ended since, or whose renewal dropped progress: a later
    # consent does not show it to them again.
    released_to: frozenset[str] = frozenset()


@dataclass
class PrivacyModel:
    zone: str
    now: datetime
    therapist_of: dict[str, str] = field(default_factory=dict)  # patient -> therapist
    address_of: dict[str, str] = field(default_factory=dict)  # family member -> email
    links: set[tuple[str, str]] = field(default_factory=set)  # (patient, member)
    consents: list[Consent] = field(default_factory=list)
    # (member, module) -> (marker, shared, the patient it is about): the newest one written.
    reflections: dict[tuple[str, str, str], tuple[str, bool]] = field(default_factory=dict)
    # patient -> (number of the current episode of care, its first day, ended or not)
    episodes: dict[str, tuple[int, date, bool]] = field(default_factory=dict)
    # (patient, number) -> the first day of each episode begun by a readmission
    readmitted_on: dict[tuple[str, int], date] = field(default_factory=dict)
    # patient -> {program day: "attended", "absent" or "excused"}, as their therapist recorded.
    program_days: dict[str, dict[date, str]] = field(default_factory=dict)
    # A video session's join token -> (its therapist, start, end); the patients with a seat
    # in it; and the members who took one (join token, patient, member).
    video: dict[str, tuple[str, datetime, datetime]] = field(default_factory=dict)
    seats: set[tuple[str, str]] = field(default_factory=set)  # (join token, patient)
    coming: set[tuple[str, str, str]] = field(default_factory=set)
    # A practice tool entry's id -> (its writer, its tool, its marker, the patient whose
    # therapist it is shared with or None): the entries that exist now.
    practice: dict[int, tuple[str, str, str, str | None]] = field(default_factory=dict)
    updates: dict[int, Update] = field(default_factory=dict)  # progress updates by id
    # Each note a therapist wrote assigning a reading: its marker -> (patient, member,
    # reading); and the readings released to a member and not withdrawn since (their access
    # about the patient ended): (patient, member, reading) -> the marker of its note.
    notes: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    readings: dict[tuple[str, str, str], str] = field(default_factory=dict)

    # --- what happened

    def consent_end(self, last_day: date | None) -> datetime | None:
        """A consent to a date lasts to the end of that day in the program's time zone."""
        if last_day is None:
            return None
        return datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=ZoneInfo(self.zone))

    def sign(self, patient, address, scopes, last_day, family_visible, recipient=None) -> Consent:
        """A new consent supersedes the open one to the same address (records never change);
        a member already linked at that address has it at once (a renewal), and it
        supersedes that person's other consents from this patient (one in force per person).
        "Until the end of this episode" belongs to the episode in progress."""
        superseded = [self._replace(old) for old in self.open_consents(patient, address)]
        member = next(
            (m for (p, m) in self.links if p == patient and self.address_of.get(m) == address),
            None,
        )
        if member is not None:
            superseded += self._supersede_others(patient, member)
        consent = Consent(
            patient,
            address,
            frozenset(scopes),
            self.consent_end(last_day),
            family_visible,
            member=member,
            episode=self.episodes[patient][0] if patient in self.episodes else 1,
            recipient=recipient,
        )
        self.consents.append(consent)
        if member is not None and SCHEDULING not in consent.scopes:
            self._leave_future_sessions(patient, member)  # a renewal without scheduling
        if member is not None:
            self._drop_progress(consent, superseded)
        return consent

    def _supersede_others(self, patient: str, member: str) -> list[Consent | None]:
        return [
            self._replace(old)
            for old in self.consents
            if old.patient == patient and old.member == member and old.closed is None
        ]

    def _replace(self, old: Consent) -> Consent | None:
        """A renewal supersedes `old`; one already past its end (no sweep yet) ended access
        then, so it closes as expired with the effects of the sweep (issue 19, point 1).
        Returns `old` when it was superseded (it was in force)."""
        if old.in_force(self.now):
            old.closed = "superseded"
            return old
        old.closed = "expired"
        if old.member is not None:
            self._leave_future_sessions(old.patient, old.member)
            self._unshare(old.patient, old.member)
        return None

    def _drop_progress(self, renewal: Consent, superseded: list[Consent | None]) -> None:
        """A renewal that no longer covers progress, superseding one of its person's (or one
        to the address nobody had accepted) that did, ends the progress scope at once as
        ending access does (rule 6): the updates released to that person about the patient
        are withdrawn (rule 19)."""
        dropped = any(
            old is not None and old.member in (None, renewal.member) and PROGRESS in old.scopes
            for old in superseded
        )
        if dropped and PROGRESS not in renewal.scopes and renewal.in_force(self.now):
            self._withdraw_updates(renewal.patient, renewal.member)

    def may_sign_until_episode_end(self, patient: str) -> bool:
        return patient not in self.episodes or not self.episodes[patient][2]

    def discharge(self, patient: str, ended_on: date) -> None:
        """The episode ends at the start of `ended_on` (program time): its "end of this
        episode" consents end then (no extra days are chosen in the oracle's world)."""
        number, started_on, _ended = self.episodes[patient]
        end = datetime.combine(ended_on, time(0), tzinfo=ZoneInfo(self.zone))
        for consent in self.consents:
            if consent.patient == patient and consent.ends_at is None and consent.episode == number:
                consent.ends_at = end
        self.episodes[patient] = (number, started_on, True)

    def readmit(self, patient: str, started_on: date) -> None:
        """A new episode: it never revives a consent of an earlier one."""
        number, _started, _ended = self.episodes[patient]
        self.episodes[patient] = (number + 1, started_on, False)
        self.readmitted_on[patient, number + 1] = started_on

    def open_consents(self, patient: str, address: str) -> list[Consent]:
        return [
            c
            for c in self.consents
            if c.patient == patient and c.address == address and c.closed is None
        ]

    def accept(self, patient: str, member: str) -> None:
        """Accepting the invitation ties the open consent(s) to that address to the account."""
        self.links.add((patient, member))
        accepted = self.open_consents(patient, self.address_of[member])
        if accepted:
            # The newest accepted one stays in force.
            superseded = self._supersede_others(patient, member)
            for consent in accepted[:-1]:
                consent.member = member  # bound on acceptance, then replaced
                superseded.append(self._replace(consent))
            accepted[-1].closed = None
            accepted[-1].member = member
            if SCHEDULING not in accepted[-1].scopes:
                self._leave_future_sessions(patient, member)
            self._drop_progress(accepted[-1], superseded)

    def end(self, patient: str, member: str, reason: str) -> None:
        for consent in self.consents:
            if consent.patient == patient and consent.member == member and not consent.closed:
                consent.closed = reason
                self._leave_future_sessions(patient, member)
                self._unshare(patient, member)

    def _leave_future_sessions(self, patient: str, member: str) -> None:
        """Access ending (revoked, expired) takes the member off the patient's sessions to
        come: a later renewal does not put them back."""
        for token, (_therapist, starts, _ends) in self.video.items():
            if starts > self.now:
                self.coming.discard((token, patient, member))

    def _unshare(self, patient: str, member: str) -> None:
        """Access ending makes private again what the member shared with the patient's
        therapist (practice entries, reflections) and withdraws the progress updates
        released to them: a later consent does not show any of it again."""
        for key, (marker, shared) in self.reflections.items():
            if shared and key[0] == member and key[2] == patient:
                self.reflections[key] = (marker, False)
        for entry, (writer, kind, marker, shared_with) in self.practice.items():
            if writer == member and shared_with == patient:
                self.practice[entry] = (writer, kind, marker, None)
        self._withdraw_updates(patient, member)
        # The readings released to them are withdrawn too: a later consent shows only
        # readings released under it (docs/learning.md).
        for key in [k for k in self.readings if k[:2] == (patient, member)]:
            del self.readings[key]

    def assign(self, patient: str, member: str, reading: str, note: str) -> bool:
        """The patient's therapist assigns `reading` to `member` with `note`: released now
        under the consent in force (any scope), unless one released to them and not
        withdrawn since still stands (nothing new: its note stays). Returns whether it was
        released."""
        if (patient, member, reading) in self.readings:
            return False
        self.notes[note] = (patient, member, reading)
        self.readings[(patient, member, reading)] = note
        return True

    def may_see_note(self, viewer: str, note: str) -> bool:
        """A therapist's note on a reading: its writer's (the patient's therapist), and the
        member's while that reading is released to them and not withdrawn since, under a
        consent in force now. Never the patient, anyone else, or an email."""
        patient, member, reading = self.notes[note]
        if viewer == self.therapist_of[patient]:
            return True
        return (
            viewer == member
            and self.readings.get((patient, member, reading)) == note
            and self.active(patient, member) is not None
        )

    def _withdraw_updates(self, patient: str, member: str) -> None:
        """The updates about `patient` released to `member` are withdrawn from them: a later
        consent shows only what is released under it (rule 19)."""
        for found in self.updates.values():
            if found.patient == patient and member in found.released_to:
                found.released_to = found.released_to - {member}

    def take_seat(self, token: str, patient: str, member: str) -> None:
        """The member took a seat about `patient` in the video session `token`."""
        self.seats.add((token, patient))
        self.coming.add((token, patient, member))

    def record_program_day(self, patient: str, day: date, status: str) -> None:
        """The therapist records (or corrects) the patient's attendance on a program day."""
        self.program_days.setdefault(patient, {})[day] = status

    def this_weeks_program_days(self, patient: str, viewer: str | None = None) -> tuple[int, int]:
        """(days attended, days recorded) of the program week (Monday to Sunday, program
        time) in progress, up to today: what the summary's first sentence counts. For a
        family member, only days from the first day of the episode their consent in force
        was signed in: a consent after a readmission covers nothing of the episode before."""
        today = self.now.astimezone(ZoneInfo(self.zone)).date()
        first = today - timedelta(days=today.weekday())
        consent = self.active(patient, viewer) if viewer and self.is_family(viewer) else None
        if consent is not None:
            first = max(first, self.readmitted_on.get((patient, consent.episode), first))
        week = [s for d, s in self.program_days.get(patient, {}).items() if first <= d <= today]
        return week.count("attended"), len(week)

    def update_recipients(self, patient: str, member: str | None) -> frozenset[str]:
        """Whom a new update about `patient` is for: `member`, or everyone (None), among
        the members whose consent in force covers progress; empty: the draft is refused."""
        family = {m for (p, m) in self.links if p == patient and self.covers_progress(m, patient)}
        return frozenset(family if member is None else family & {member})

    def covers_progress(self, member: str, patient: str) -> bool:
        return self.may_see_patient(member, patient, PROGRESS) and self.is_family(member)

    def revise(self, update: int, marker: str) -> bool:
        """A new version of an update not yet decided or sent back for changes."""
        found = self.updates[update]
        if found.status not in ("awaiting", "changes"):
            return False
        found.versions.append(marker)
        found.status = "awaiting"
        return True

    def decide(self, update: int, decision: str) -> bool:
        """The patient's answer about the newest version; approval releases it to the
        recipients whose consent covers progress at this moment."""
        found = self.updates[update]
        if found.status != "awaiting":
            return False
        found.status = {"approve": "released", "changes": "changes", "decline": "declined"}[
            decision
        ]
        if decision == "approve":
            found.approved = found.versions[-1]
            found.released_to = frozenset(
                m for m in found.recipients if self.covers_progress(m, found.patient)
            )
        return True

    def sweep(self) -> None:
        """The expiry sweep closes what has reached its end date."""
        for consent in self.consents:
            if consent.closed is None and not consent.in_force(self.now):
                consent.closed = "expired"
                if consent.member is not None:
                    self._leave_future_sessions(consent.patient, consent.member)
                    self._unshare(consent.patient, consent.member)

    def state(self) -> tuple:
        """What the verdicts depend on, as one hashable value (to count distinct states)."""
        consents = tuple(
            (
                c.patient,
                c.member or c.address,
                tuple(sorted(c.scopes)),
                c.closed,
                c.in_force(self.now),
            )
            for c in self.consents
        )
        reflections = tuple(sorted((k, r[1:]) for k, r in self.reflections.items()))
        recorded = tuple(sorted((p, len(days)) for p, days in self.program_days.items()))
        practice = tuple(
            sorted((m, k, shared or "") for m, k, _w, shared in self.practice.values())
        )
        updates = tuple(
            (u.patient, tuple(sorted(u.recipients)), len(u.versions), u.status, u.released_to)
            for u in self.updates.values()
        )
        return (
            frozenset(self.links),
            consents,
            tuple(sorted(self.readings)),
            reflections,
            practice,
            updates,
            tuple(sorted(self.episodes.items())),
            recorded,
            frozenset(self.coming),
        )

    # --- what may be seen

    def active(self, patient: str, member: str) -> Consent | None:
        """The consent in force from `patient` to `member` now (an accepted one), if any."""
        for consent in self.consents:
            if (
                consent.patient == patient
                and consent.member == member
                and (patient, member) in self.links
                and consent.in_force(self.now)
            ):
                return consent
        return None

    def is_family(self, person: str) -> bool:
        return person in self.address_of

    def may_see_patient(self, viewer: str, patient: str, scope: str | None = None) -> bool:
        """The patient, their own therapist, or a family member under an active consent
        (whose scopes cover `scope`, when the page is about that kind of information)."""
        if viewer == patient or self.therapist_of.get(patient) == viewer:
            return True
        consent = self.active(patient, viewer) if self.is_family(viewer) else None
        return consent is not None and (scope is None or scope in consent.scopes)

    def may_see_attendance(self, viewer: str, patient: str) -> bool:
        """Whether the patient came to a family session: under the attendance scope."""
        return self.may_see_patient(viewer, patient, ATTENDANCE)

    def may_see_program_attendance(self, viewer: str, patient: str) -> bool:
        """The weekly program attendance summary: under the attendance scope (rule 16)."""
        return self.may_see_patient(viewer, patient, ATTENDANCE)

    def may_enter_room(self, viewer: str, token: str) -> bool:
        """Following a video session's join link opens its room (rule 17) for the session's
        therapist, its patient, or a member who took a seat in it under an active consent
        with the scheduling scope; and only from 15 minutes before the start to the end."""
        if token not in self.video:
            return False  # an in-person session: it has no room
        therapist, starts, ends = self.video[token]
        if not starts - timedelta(minutes=15) <= self.now < ends:
            return False
        if viewer == therapist or (token, viewer) in self.seats:
            return True
        return any(
            (token, patient, viewer) in self.coming
            and self.may_see_patient(viewer, patient, SCHEDULING)
            for patient in self.therapist_of
        )

    def may_see_member(self, viewer: str, member: str) -> bool:
        """A family member's name: their own; the patient who named them on a consent and
        that patient's therapist; and another family member only under an active consent
        from a patient they are both linked to whose "may see the other family members"
        choice is on (the patient's yes to the viewer, not to the one shown)."""
        if viewer == member:
            return True
        named_by = {c.patient for c in self.consents if c.recipient == member}
        if viewer in named_by or any(self.therapist_of.get(p) == viewer for p in named_by):
            return True
        if not self.is_family(viewer):
            return False
        return any(
            (patient, member) in self.links
            and (consent := self.active(patient, viewer)) is not None
            and consent.family_visible
            for patient in self.therapist_of
        )

    def invited(self, patient: str, address: str) -> bool:
        """An invitation the patient issued with a consent still in force may name them."""
        return any(c.in_force(self.now) for c in self.open_consents(patient, address))

    def may_see_reflection(self, viewer: str, member: str, module: str, about: str) -> bool:
        """A reflection is its writer's; a shared one also reaches the therapist of the
        patient it is about, while that patient's consent to the writer is active. Nobody
        else ever reads it: not the patient, not another therapist."""
        if viewer == member:
            return True
        _marker, shared = self.reflections[(member, module, about)]
        return shared and self.therapist_of[about] == viewer and bool(self.active(about, member))

    def may_share_practice(self, member: str, patient: str) -> bool:
        """An entry may be shared with the therapist of a patient whose consent to its
        writer is in force (any scope): rule 20."""
        return self.active(patient, member) is not None

    def may_see_practice(self, viewer: str, entry: int) -> bool:
        """A practice entry is its writer's; a shared one also reaches the therapist of the
        patient it is shared with, while that patient's consent to the writer is in force.
        Never the patient, another therapist, another family member, or any email."""
        member, _kind, _marker, shared = self.practice[entry]
        if viewer == member:
            return True
        return (
            shared is not None
            and self.therapist_of[shared] == viewer
            and self.active(shared, member) is not None
        )

    def may_read_update(self, viewer: str, update: int, marker: str) -> bool:
        """A version of a progress update on a page (never in an email): the patient's and
        their therapist's; a family member's only if it is the approved version, released to
        them and not withdrawn since (their access about the patient ended, or a renewal
        dropped progress), and their consent covers progress now (rule 19)."""
        found = self.updates[update]
        if viewer == found.patient or self.therapist_of[found.patient] == viewer:
            return True
        return (
            found.status == "released"
            and found.approved == marker
            and viewer in found.released_to
            and self.covers_progress(viewer, found.patient)
        )
