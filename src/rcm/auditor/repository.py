"""All SQL of the auditor console. Every statement runs under the auditor's tenant context: row-level
security limits each read to the practices the auditor's token grants, whatever a filter names."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Text,
    Time,
    and_,
    cast,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID, aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from rcm.audit.repository import audit_event
from rcm.claims.models import Claim, SubmissionBatch
from rcm.patients.models import Patient

# At most this many event ids ride with one flag or one summary row (the auditor opens the rest by search).
SAMPLE_IDS = 20

e = audit_event.c


def _person() -> ColumnElement[bool]:
    """Events of a person (an app user), not of a practice's system, a job or an operator's CLI."""
    return and_(
        e.actor_kind == "user",
        e.actor_subject.is_not(None),
        ~e.actor_subject.like("system:%"),
        ~e.actor_subject.like("operator:%"),
    )


def _touches_patients() -> ColumnElement[bool]:
    """Events naming a patient, other than the console's own review of the log (``audit.*``: an auditor
    reading a patient's timeline, or the family-name scan naming every patient it compared, would otherwise
    make the review itself a volume spike or an after-hours access)."""
    return and_(func.cardinality(e.patient_ids) > 0, e.event_type.not_like("audit.%"))


def _window(since: datetime, until: datetime) -> ColumnElement[bool]:
    return and_(e.occurred_at >= since, e.occurred_at < until)


def _local(tz: str) -> ColumnElement[Any]:
    return func.timezone(literal(tz, Text), e.occurred_at)


def _ordered_sample() -> ColumnElement[Any]:
    """The group's first ``SAMPLE_IDS`` event ids, in time order."""
    ids = func.array_agg(aggregate_order_by(e.id, e.occurred_at, e.id), type_=ARRAY(UUID(as_uuid=True)))
    return ids[1:SAMPLE_IDS]


@dataclass(frozen=True, slots=True)
class Group:
    """Events of one actor grouped by a key (a day, a grant, a patient)."""

    tenant_id: uuid.UUID
    actor_subject: str
    key: Any
    count: int
    first_at: datetime
    last_at: datetime
    event_ids: tuple[uuid.UUID, ...]


def _groups(rows: Sequence[Any]) -> list[Group]:
    return [Group(row[0], row[1], row[2], int(row[3]), row[4], row[5], tuple(row[6] or ())) for row in rows]


async def daily_person_counts(
    session: AsyncSession, *, since: datetime, until: datetime, tz: str
) -> list[Group]:
    """Per practice, person and local day: how many events touched a patient's record."""
    day = cast(_local(tz), Date).label("day")
    statement = (
        select(
            e.tenant_id, e.actor_subject, day, func.count(), func.min(e.occurred_at), func.max(e.occurred_at)
        )
        .add_columns(_ordered_sample())
        .where(_window(since, until), _person(), _touches_patients())
        .group_by(e.tenant_id, e.actor_subject, day)
    )
    return _groups((await session.execute(statement)).all())


async def after_hours(
    session: AsyncSession, *, since: datetime, until: datetime, tz: str, start: time, end: time
) -> list[Group]:
    """Per practice, person and local day: events touching a patient outside ``start``..``end`` on a
    weekday, or at any time on a Saturday or Sunday (ISO day of week 6 and 7), in ``tz``."""
    local = _local(tz)
    day = cast(local, Date).label("day")
    outside = or_(
        func.extract("isodow", local) > 5,
        cast(local, Time) < start,
        cast(local, Time) >= end,
    )
    statement = (
        select(
            e.tenant_id, e.actor_subject, day, func.count(), func.min(e.occurred_at), func.max(e.occurred_at)
        )
        .add_columns(_ordered_sample())
        .where(_window(since, until), _person(), _touches_patients(), outside)
        .group_by(e.tenant_id, e.actor_subject, day)
    )
    return _groups((await session.execute(statement)).all())


async def break_glass_use(session: AsyncSession, *, since: datetime, until: datetime) -> list[Group]:
    """Per practice, person and grant: the break-glass grant's own events (``break_glass.*``) and every
    access made under it (``detail.access = 'break_glass'``)."""
    grant = func.coalesce(
        e.detail["break_glass_grant"].astext,
        func.cast(e.resource_ids[1], Text),
    ).label("grant")
    statement = (
        select(
            e.tenant_id,
            e.actor_subject,
            grant,
            func.count(),
            func.min(e.occurred_at),
            func.max(e.occurred_at),
        )
        .add_columns(_ordered_sample())
        .where(
            _window(since, until),
            e.actor_subject.is_not(None),
            or_(e.event_type.like("break\\_glass.%"), e.detail["access"].astext == "break_glass"),
        )
        .group_by(e.tenant_id, e.actor_subject, grant)
    )
    return _groups((await session.execute(statement)).all())


async def person_patient_touches(session: AsyncSession, *, since: datetime, until: datetime) -> list[Group]:
    """Per practice, person and patient: the events of that person that touched that patient."""
    patients = func.unnest(e.patient_ids).table_valued("patient_id").render_derived(name="p")
    statement = (
        select(
            e.tenant_id,
            e.actor_subject,
            patients.c.patient_id,
            func.count(),
            func.min(e.occurred_at),
            func.max(e.occurred_at),
        )
        .add_columns(_ordered_sample())
        .select_from(audit_event.join(patients, literal(True)))
        .where(_window(since, until), _person())
        .group_by(e.tenant_id, e.actor_subject, patients.c.patient_id)
    )
    return _groups((await session.execute(statement)).all())


async def patient_family_names(
    session: AsyncSession, tenant_id: uuid.UUID, patient_ids: Sequence[uuid.UUID]
) -> list[tuple[uuid.UUID, bytes]]:
    """The sealed family names of a practice's patients (ciphertext; the service opens them)."""
    if not patient_ids:
        return []
    rows = await session.execute(
        select(Patient.id, Patient.family_name).where(
            Patient.tenant_id == tenant_id, Patient.id.in_(list(patient_ids))
        )
    )
    return [(row[0], bytes(row[1])) for row in rows]


# --- disclosures and timelines ---------------------------------------------------------------------------


async def patient_events(
    session: AsyncSession,
    patient_id: uuid.UUID,
    *,
    event_types: Sequence[str],
    since: datetime,
    until: datetime,
) -> list[dict[str, Any]]:
    """Successful events naming the patient whose type is one of ``event_types`` or that were made under
    break-glass, oldest first."""
    statement = (
        select(
            e.tenant_id,
            e.id,
            e.occurred_at,
            e.event_type,
            e.action,
            e.actor_kind,
            e.actor_subject,
            e.client_id,
            e.resource_type,
            e.resource_ids,
            e.detail["payer"].astext.label("payer"),
            (e.detail["access"].astext == "break_glass").label("break_glass"),
        )
        .where(
            e.patient_ids.contains([patient_id]),
            e.outcome == "0",
            _window(since, until),
            or_(e.event_type.in_(list(event_types)), e.detail["access"].astext == "break_glass"),
        )
        .order_by(e.occurred_at, e.id)
    )
    return [dict(row) for row in (await session.execute(statement)).mappings()]


async def claim_submissions(
    session: AsyncSession, patient_id: uuid.UUID, *, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """The patient's claims sent to a payer in an 837 (the claim's latest batch), oldest first."""
    b, c = SubmissionBatch, Claim
    statement = (
        select(
            b.tenant_id,
            b.id.label("batch_id"),
            b.sent_at,
            b.payer_id,
            c.id.label("claim_id"),
            c.claim_type,
        )
        .join(c, and_(c.tenant_id == b.tenant_id, c.submission_batch_id == b.id))
        .where(c.patient_id == patient_id, b.sent_at.is_not(None), b.sent_at >= since, b.sent_at < until)
        .order_by(b.sent_at, c.id)
    )
    return [dict(row) for row in (await session.execute(statement)).mappings()]


async def actors_of_patient(session: AsyncSession, patient_id: uuid.UUID) -> list[dict[str, Any]]:
    """Who touched the patient's record: per practice and actor, how often, when first and last, and with
    which actions."""
    actor = func.coalesce(e.actor_subject, e.client_id, e.actor_hint)
    statement = (
        select(
            e.tenant_id,
            actor.label("actor"),
            func.min(e.actor_kind).label("actor_kind"),
            func.min(e.client_id).label("client_id"),
            func.count().label("events"),
            func.min(e.occurred_at).label("first_at"),
            func.max(e.occurred_at).label("last_at"),
            func.array_agg(func.distinct(e.action)).label("actions"),
            func.array_agg(func.distinct(e.event_type)).label("event_types"),
        )
        .where(e.patient_ids.contains([patient_id]))
        .group_by(e.tenant_id, actor)
        .order_by(func.max(e.occurred_at).desc())
    )
    return [dict(row) for row in (await session.execute(statement)).mappings()]


async def patients_of_actor(session: AsyncSession, subject: str) -> list[dict[str, Any]]:
    """What a person touched: per practice and patient, how often and when first and last."""
    patients = func.unnest(e.patient_ids).table_valued("patient_id").render_derived(name="p")
    statement = (
        select(
            e.tenant_id,
            patients.c.patient_id,
            func.count().label("events"),
            func.min(e.occurred_at).label("first_at"),
            func.max(e.occurred_at).label("last_at"),
            func.array_agg(func.distinct(e.action)).label("actions"),
        )
        .select_from(audit_event.join(patients, literal(True)))
        .where(e.actor_subject == subject)
        .group_by(e.tenant_id, patients.c.patient_id)
        .order_by(func.max(e.occurred_at).desc())
    )
    return [dict(row) for row in (await session.execute(statement)).mappings()]
