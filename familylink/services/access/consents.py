"""The consent rule: which consent is in force from a patient to a family member, what it
covers, and the bulk answers built on it (for sweeps, the sender, staff lists and pages that
show many people at once). These record nothing but refusals; the functions that open
something for a person, and record that they did, are in the package's `__init__`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import and_, bindparam, select
from sqlalchemy.orm import aliased, joinedload, load_only, noload

from familylink.extensions import db
from familylink.models import (
    AppointmentFamily,
    ClosureReason,
    ConsentClosure,
    ConsentRecord,
    Episode,
    ExpiryKind,
    FamilyLink,
    Role,
    Scope,
    User,
)
from familylink.services import audit

#: A consent that ends within this time is "expiring": the patient is reminded, staff warned.
EXPIRING_SOON = timedelta(days=14)
# The `required_scope` of an email about a patient to the patient or their care team (their
# therapist, a session's therapist): it names the patient, so its audit rows do, but no
# family member's consent governs it.
IN_CARE = "in care"


def consent_end(consent: ConsentRecord, patient: User) -> datetime | None:
    """When the consent stops by the clock, or None while its end event has not happened.

    An "end of episode" consent follows the episode it was signed in, never the patient's
    current one: a readmission does not revive it.
    """
    episode = consent.episode
    return _clock_end(
        consent.expiry_kind,
        consent.expires_at,
        consent.expiry_days_after_episode,
        episode.ended_on if episode is not None else None,
    )


def _clock_end(kind, expires_at, days_after_episode, episode_ended_on) -> datetime | None:
    # The rule of `consent_end`, on its columns: `family_in_force` reads only those.
    if kind == ExpiryKind.DATE:
        return expires_at
    if episode_ended_on is None:
        return None
    return episode_ended_on + timedelta(days=days_after_episode or 0)


def is_closed(consent: ConsentRecord) -> bool:
    """Closed: revoked, expired (by the sweep, a discharge or a renewal) or superseded."""
    return consent.closure is not None


def _before_end(end: datetime | None, now: datetime) -> bool:
    return end is None or now < end


def _ending_soon(end: datetime | None, now: datetime) -> bool:
    return end is not None and end - EXPIRING_SOON <= now


def is_active(consent: ConsentRecord, patient: User, now: datetime) -> bool:
    return not is_closed(consent) and _before_end(consent_end(consent, patient), now)


def status_of(consent: ConsentRecord, patient: User, now: datetime) -> str:
    """active, expiring (within 14 days), revoked, expired or superseded."""
    if is_closed(consent):
        return consent.closure.reason
    end = consent_end(consent, patient)
    if not _before_end(end, now):
        return "expired"
    if _ending_soon(end, now):
        return "expiring"
    return "active"


def access_ended_at(consent: ConsentRecord, patient: User, now: datetime) -> datetime | None:
    """When access under `consent` ended, as a family member's home says it: when it was
    revoked, else when it reached its end by the clock (closed as expired by a sweep a
    little later, or superseded by a renewal, included); None while that end has not come."""
    closure = consent.closure if is_closed(consent) else None
    if closure is not None and closure.reason != ClosureReason.SUPERSEDED:
        end = consent_end(consent, patient) if closure.reason == ClosureReason.EXPIRED else None
        return closure.closed_at if end is None else min(end, closure.closed_at)
    end = consent_end(consent, patient)
    return None if _before_end(end, now) else end


def in_force_until(consent: ConsentRecord | None, patient: User, *, now: datetime):
    """Until when the consent in force (`active_consent`'s answer; None: there is none) lets
    its person take part: its end by the clock, None while it has none yet, `now` when no
    consent is in force (nothing ahead is covered)."""
    return consent_end(consent, patient) if consent is not None else now


def lasts_through(until: datetime | None, moment: datetime) -> bool:
    """Whether a consent in force `until` (`in_force_until`) still covers all of a session
    ending at `moment`: it holds at every instant before its end, so a session may end as
    it does."""
    return until is None or moment <= until


def scopes_dropped(previous: list[ConsentRecord], by: ConsentRecord) -> list[Scope]:
    """The scopes some of `previous` cover that `by`, replacing them for their person, does
    not: what the renewal ends (`consent.ending.end_scopes`)."""
    return sorted(
        scope
        for scope in Scope
        if not _covers(by, scope) and any(_covers(old, scope) for old in previous)
    )


def _rule_columns() -> tuple:
    """What the consent rule reads of a consent (whom and what it covers, when it ends) and
    what the gate's callers read of the consent it answers with (whether the member may see
    the rest of the family, its end shown on the patient's page). Never its words: the
    consent page and the signing flow, which show them, load them when they read them."""
    scopes = [getattr(ConsentRecord, f"scope_{scope.value}") for scope in Scope]
    return (
        ConsentRecord.patient_id,
        ConsentRecord.recipient_user_id,
        ConsentRecord.recipient_email,
        ConsentRecord.expiry_kind,
        ConsentRecord.expires_at,
        ConsentRecord.expiry_days_after_episode,
        ConsentRecord.episode_id,
        ConsentRecord.family_visible,
        *scopes,
    )


def _open_consent_loading() -> tuple:
    """How a consent read through an outer join to its closure, kept only when there is
    none (`ConsentClosure.id IS NULL`), is loaded: the rule's columns, its closure None as
    that join found it (the relationship's own eager load would join the closures again),
    and of its episode its start and end only."""
    return (
        load_only(*_rule_columns()),
        noload(ConsentRecord.closure),
        joinedload(ConsentRecord.episode).load_only(Episode.started_on, Episode.ended_on),
    )


def _open_consents(*columns):
    """`columns` of consents, with the patients they are about, not closed (clock checked
    after) and bound to a person whose family link to the patient stands, newest first.

    A consent covers the person it is bound to (`recipient_user_id`, set when they accepted
    it), never whoever now holds the address it was sent to: an email change moves nothing.
    """
    return (
        select(*columns)
        .select_from(ConsentRecord)
        .join(
            FamilyLink,
            and_(
                FamilyLink.patient_id == ConsentRecord.patient_id,
                FamilyLink.family_user_id == ConsentRecord.recipient_user_id,
            ),
        )
        .join(User, User.id == ConsentRecord.patient_id)
        .outerjoin(ConsentClosure, ConsentClosure.consent_id == ConsentRecord.id)
        .where(ConsentClosure.id.is_(None), User.active.is_(True))
        .order_by(ConsentRecord.signed_at.desc(), ConsentRecord.id.desc())
    )


@cache
def _open_consents_query():
    """`_open_consents`: each consent (loaded as `_open_consent_loading` says) with its
    patient.

    Built once: the statement is immutable and callers add their own conditions; building
    it costs more than running it.
    """
    return _open_consents(ConsentRecord, User).options(*_open_consent_loading())


# Every signed-in family page asks one of these: built once with their ids as parameters,
# since building a statement and its cache key on each request cost more than running it.
@cache
def _open_consents_of_member():
    return _open_consents_query().where(FamilyLink.family_user_id == bindparam("member"))


@cache
def _open_consents_of_member_about():
    return _open_consents_of_member().where(ConsentRecord.patient_id == bindparam("patient"))


def _active_consent_and_patient(
    family_user_id: int, patient_id: int, *, now: datetime
) -> tuple[ConsentRecord | None, User | None]:
    rows = db.session.execute(
        _open_consents_of_member_about(), {"member": family_user_id, "patient": patient_id}
    ).all()
    for consent, patient in rows:
        if is_active(consent, patient, now):
            return consent, patient
    return None, None


def _covers(consent: ConsentRecord | InForce | None, scope: Scope | None) -> bool:
    return consent is not None and _scopes_cover(consent.scopes, scope)


def _scopes_cover(scopes, scope: Scope | None) -> bool:
    return scope is None or scope in scopes


def active_consent(family_user_id: int, patient_id: int, *, now: datetime) -> ConsentRecord | None:
    """The consent now in force from that patient to that family member, if any."""
    return _active_consent_and_patient(family_user_id, patient_id, now=now)[0]


def may_disclose(
    family_user_id: int,
    patient_id: int,
    scope: Scope | None,
    *,
    now: datetime,
    audit_access: bool = True,
) -> bool:
    """True when an active consent covers `scope` (None: any active consent at all).

    A refusal is audited unless `audit_access` is False (checks that show nothing).
    """
    allowed = _covers(active_consent(family_user_id, patient_id, now=now), scope)
    if not allowed and audit_access:
        _deny(None, patient_id, recipient_id=family_user_id, detail={"scope": scope}, now=now)
    return allowed


def pairs_with_scope(
    pairs: set[tuple[int, int]], scope: Scope | None, *, now: datetime
) -> set[tuple[int, int]]:
    """Of these (family member id, patient id) pairs, those whose consent in force now
    covers `scope` (None: any consent in force): what may_disclose answers for each, in
    one query (for sweeps, the sender's batches and every booking's `hold_consents`), of
    the rule's columns alone (`_rule_as_row`, as `family_in_force` reads them)."""
    if not pairs:
        return set()
    rows = db.session.execute(
        _open_consents_of_pairs(),
        {"members": sorted({f for f, _ in pairs}), "patients": sorted({p for _, p in pairs})},
    )
    decided: dict[tuple[int, int], bool] = {}
    for row in rows.all():  # newest first, like active_consent
        pair = (row.recipient_user_id, row.patient_id)
        if pair in pairs and pair not in decided and _before_end(_row_end(row), now):
            decided[pair] = _scopes_cover(_row_scopes(row), scope)
    return {pair for pair, ok in decided.items() if ok}


def _rule_as_row() -> tuple:
    """What a consent's rule reads, beside whom it covers: when it ends (`consent_end`'s
    columns, its episode's end from an outer join of `Episode`) and what it covers. Rows of
    these are read by `_row_end` and `_row_scopes`, no consent or patient loaded (what
    `_rule_columns` loads of a consent object, as plain columns)."""
    return (
        ConsentRecord.expiry_kind,
        ConsentRecord.expires_at,
        ConsentRecord.expiry_days_after_episode,
        Episode.ended_on,
        *(getattr(ConsentRecord, f"scope_{scope.value}") for scope in Scope),
    )


def _row_end(row) -> datetime | None:
    """`consent_end` of a row of `_rule_as_row`."""
    return _clock_end(row.expiry_kind, row.expires_at, row.expiry_days_after_episode, row.ended_on)


def _row_scopes(row) -> tuple[Scope, ...]:
    """What a row of `_rule_as_row` covers, as `ConsentRecord.scopes` lists it."""
    return tuple(scope for scope in Scope if getattr(row, f"scope_{scope.value}"))


@cache
def _open_consents_of_pairs():
    """Open consents of the members "members" about the patients "patients": of each, whom
    and what it covers and its end's columns. Built once: every booking asks it."""
    return (
        _open_consents(ConsentRecord.recipient_user_id, ConsentRecord.patient_id, *_rule_as_row())
        .outerjoin(Episode, Episode.id == ConsentRecord.episode_id)
        .where(
            FamilyLink.family_user_id.in_(bindparam("members", expanding=True)),
            ConsentRecord.patient_id.in_(bindparam("patients", expanding=True)),
        )
    )


def _in_care(pairs: set[tuple[int | str, int]]) -> set[tuple[int | str, int]]:
    accounts = {who for who, _patient in pairs if isinstance(who, int)}
    roles = dict(
        db.session.execute(select(User.id, User.role).where(User.id.in_(accounts))).all()
        if accounts
        else ()
    )
    return {
        (who, patient_id)
        for who, patient_id in pairs
        if who == patient_id or roles.get(who) == Role.THERAPIST
    }


def _without_disabled_accounts(
    pairs: set[tuple[int | str, int]],
) -> set[tuple[int | str, int]]:
    accounts = {who for who, _patient in pairs if isinstance(who, int)}
    if not accounts:
        return pairs
    disabled = set(
        db.session.scalars(select(User.id).where(User.id.in_(accounts), User.active.is_(False)))
    )
    return {pair for pair in pairs if pair[0] not in disabled}


def recipients_allowed(
    pairs: set[tuple[int | str, int]], scope: str | None, *, now: datetime
) -> set[tuple[int | str, int]]:
    """The sender's check: of these (recipient, patient id) pairs, those that may still be
    told about the patient. A recipient is a family member's id (their consent in force must
    cover `scope`), or the address of someone invited who has no account yet (a consent to
    that address must still be open: an invitation must not outlive its consent). `IN_CARE`
    emails go to the patient or their care team: the patient themself or a therapist may be
    told, never a family member, another patient or an admin (an email tagged so by mistake).
    A disabled account is told nothing about a patient: the admin cut it off."""
    pairs = _without_disabled_accounts(pairs)
    if scope == IN_CARE:
        return _in_care(pairs)
    members = {pair for pair in pairs if isinstance(pair[0], int)}
    invited = pairs - members
    allowed: set[tuple[int | str, int]] = set(pairs_with_scope(members, scope, now=now))
    if invited:
        rows = db.session.execute(
            select(ConsentRecord, User)
            .join(User, User.id == ConsentRecord.patient_id)
            .outerjoin(ConsentClosure, ConsentClosure.consent_id == ConsentRecord.id)
            .options(*_open_consent_loading())
            .where(
                ConsentClosure.id.is_(None),
                User.active.is_(True),
                ConsentRecord.patient_id.in_({p for _, p in invited}),
                ConsentRecord.recipient_email.in_({str(a).lower() for a, _ in invited}),
            )
        ).all()
        for record, patient in rows:
            pair = (record.recipient_email, record.patient_id)
            if pair in invited and is_active(record, patient, now) and _covers(record, scope):
                allowed.add(pair)
    return allowed


@dataclass(frozen=True, slots=True)
class InForce:
    """A family member's consent in force about a patient, as lists of many people show it:
    what it covers (`covers`, the gate's rule), when it ends by the clock (None: not yet)
    and whether that is soon (`EXPIRING_SOON`)."""

    user: User
    patient_id: int
    scopes: tuple[Scope, ...]
    ends_at: datetime | None
    ending_soon: bool

    def covers(self, scope: Scope | None) -> bool:
        return _covers(self, scope)


@cache
def _family_in_force_of_listed():
    """Open consents about the listed patients (parameter "patients"): of each, the family
    member it covers and the rule's columns only (neither the consent nor its patient is
    loaded). Built once: the booking page asks it on every request."""
    member = aliased(User, name="member")
    return (
        _open_consents(member, ConsentRecord.patient_id, *_rule_as_row())
        .join(member, member.id == FamilyLink.family_user_id)
        .outerjoin(Episode, Episode.id == ConsentRecord.episode_id)
        .where(
            ConsentRecord.patient_id.in_(bindparam("patients", expanding=True)),
            member.active.is_(True),
        )
    )


def family_in_force(patient_ids: Collection[int], *, now: datetime) -> list[InForce]:
    """The consent in force (`InForce`) of every family member of those patients, sorted by
    patient and name.

    One query whatever the number of patients or family members, for pages that show many
    people at once. `patient_ids` are the ids the page already holds, never a SELECT: given a
    subquery, PostgreSQL walked every open consent of the program and probed the subquery
    for each (25 s for one therapist's week at 100,000 consents). Records nothing: the
    caller decides what to show and to whom, asking each row what it `covers`.
    """
    if not patient_ids:
        return []
    rows = db.session.execute(_family_in_force_of_listed(), {"patients": sorted(patient_ids)})
    found: dict[tuple[int, int], InForce] = {}
    for row in rows.all():  # newest first: the first in force is the one
        key = (row.member.id, row.patient_id)
        if key in found:
            continue
        end = _row_end(row)
        if _before_end(end, now):
            found[key] = InForce(
                row.member, row.patient_id, _row_scopes(row), end, _ending_soon(end, now)
            )
    return sorted(found.values(), key=lambda row: (row.patient_id, row.user.name, row.user.id))


def family_with_scope(patient: User, scope: Scope | None, *, now: datetime) -> list[User]:
    """The patient's family members whose consent in force covers `scope` (None: any), by
    name: who may be invited to a session, assigned a reading, or emailed about them."""
    return [row.user for row in family_in_force([patient.id], now=now) if row.covers(scope)]


def family_shown_to(member: User, patient: User, *, now: datetime) -> list[User]:
    """The patient's other family members (holding the scheduling scope) that `member` may
    see and invite: nobody, unless the patient's consent to `member` says so (its
    family_visible choice, off by default)."""
    return family_shown_under(
        active_consent(member.id, patient.id, now=now), member, patient, now=now
    )


def family_shown_under(
    own: ConsentRecord | None, member: User, patient: User, *, now: datetime
) -> list[User]:
    """`family_shown_to`, given the member's consent in force as the gate just read it
    (`PatientAccess.consent`), so a page does not read it twice."""
    if own is None or not own.family_visible:
        return []
    return [m for m in family_with_scope(patient, "scheduling", now=now) if m.id != member.id]


def attendees_shown_to(viewer: User, seat: AppointmentFamily, *, now: datetime) -> list[User]:
    """Who `viewer` is shown as coming to a seat: everyone for staff; a family member sees
    themself, and the others only when their consent lets them see other family members."""
    coming = [attendee.user for attendee in seat.present_attendees]
    if viewer.role != Role.FAMILY:
        return coming
    own = active_consent(viewer.id, seat.patient_id, now=now)
    if own is not None and own.family_visible:
        return coming
    return [person for person in coming if person.id == viewer.id]


def linked_patients(
    family_user: User, *, now: datetime, scope: Scope | None = None
) -> list[tuple[User, ConsentRecord]]:
    """Each patient this family member may see now (with `scope`: whose consent covers it),
    with the consent that allows it, by name. Records nothing: see `family_patients`."""
    rows = db.session.execute(_open_consents_of_member(), {"member": family_user.id}).all()
    seen: dict[int, tuple[User, ConsentRecord]] = {}
    for consent, patient in rows:
        if patient.id not in seen and is_active(consent, patient, now):
            seen[patient.id] = (patient, consent)
    allowed = [pair for pair in seen.values() if _covers(pair[1], scope)]
    return sorted(allowed, key=lambda pair: pair[0].name)


def _deny(actor: User | None, patient_id, *, now: datetime, recipient_id=None, detail=None):
    # A guessed id may name nobody: keep it in the detail, not in the patient column.
    known = db.session.get(User, patient_id) if isinstance(patient_id, int) else None
    audit.record(
        "access.denied",
        actor=actor,
        patient_id=known.id if known is not None else None,
        recipient_id=recipient_id,
        outcome="denied",
        detail=detail,
        now=now,
    )
