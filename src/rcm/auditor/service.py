"""The auditor console: accounting of disclosures, timelines and anomaly flags over the access log.

The session carries the auditor's tenant context (the practices their token grants, ``TenantContext.
system_cross_tenant``); row-level security limits every read to them. Each call is itself an access to the
log and is recorded, one event per practice of the context, in the caller's transaction. The one rule that
needs PHI (same family name) opens the family names of the patients in question inside this process, never
returns them, and records that read (``audit.anomaly_scan``, naming each patient) in the practice's trail.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from rcm.audit import repository as audit_repository
from rcm.audit.events import Action, AuditEvent, Outcome, RequestInfo
from rcm.audit.records import AuditRecord, format_instant
from rcm.audit.service import MAX_LIMIT, decode_cursor, encode_cursor
from rcm.audit.trail import record
from rcm.auditor import repository
from rcm.auditor.rules import (
    BREAK_GLASS_TEXT,
    DISCLOSURE_EVENTS,
    EXEMPTIONS,
    SAME_FAMILY_NAME_TEXT,
    AnomalyRule,
    BusinessHours,
    DisclosureCategory,
    SpikeRule,
    family_name_of,
    name_key,
    spikes,
)
from rcm.crypto.keyring import DecryptionError, KeyStore
from rcm.identity.principal import Principal
from rcm.kit.errors import FieldError, InvalidInput
from rcm.kit.models import utcnow
from rcm.kit.tenant import TenantId
from rcm.patients.models import Patient
from rcm.tenancy.repository import people_by_subject

SIX_YEARS = timedelta(days=6 * 366)  # 164.528(a)(1): the six years before the request, leap days included
ANOMALY_WINDOW = timedelta(days=7)
MAX_ANOMALY_WINDOW = timedelta(days=92)

Detail = dict[str, str | int | bool | None]


def window(
    since: datetime | None, until: datetime | None, *, default: timedelta, longest: timedelta | None = None
) -> tuple[datetime, datetime]:
    """``[since, until)``, defaulting to ``default`` before now; refuses a reversed or too long window."""
    end = until or utcnow()
    start = since or end - default
    errors = []
    if start >= end:
        errors.append(FieldError("query:since", "must be before until"))
    elif longest is not None and end - start > longest:
        errors.append(FieldError("query:since", f"the window is at most {longest.days} days"))
    if errors:
        raise InvalidInput("The time window is not valid.", errors=errors)
    return start, end


async def _record(
    session: AsyncSession,
    event_type: str,
    *,
    actor: Principal,
    request: RequestInfo,
    detail: Detail,
    patient_ids: Sequence[uuid.UUID] = (),
    resource_ids: Sequence[uuid.UUID] = (),
    tenants: Sequence[uuid.UUID] | None = None,
    action: Action = Action.EXECUTE,
    resource_type: str = "audit_event",
) -> None:
    for tenant_id in tenants if tenants is not None else await audit_repository.context_tenants(session):
        record(
            session,
            AuditEvent(
                tenant_id=TenantId(tenant_id),
                event_type=event_type,
                action=action,
                outcome=Outcome.SUCCESS,
                request=request,
                actor=actor,
                resource_type=resource_type,
                resource_ids=tuple(resource_ids),
                patient_ids=tuple(patient_ids),
                detail=detail,
            ),
        )


# --- accounting of disclosures ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Disclosure:
    tenant_id: uuid.UUID
    occurred_at: datetime
    category: DisclosureCategory
    recipient_kind: str  # payer, user, api_client
    recipient: str | None  # the payer's id, the person's id or the client's id
    recipient_name: str | None  # the person's display name (no name for payers and clients)
    purpose: str  # what was done, as the event type names it
    action: str  # FHIR AuditEvent action code
    what: str | None  # the kind of record disclosed
    resource_ids: tuple[uuid.UUID, ...]
    event_id: uuid.UUID | None  # the audit event; none for a claim submission (read from the claim)
    accountable: bool
    exemption: str | None


async def disclosures(
    session: AsyncSession,
    patient_id: uuid.UUID,
    *,
    since: datetime | None,
    until: datetime | None,
    accountable_only: bool,
    actor: Principal,
    request: RequestInfo,
) -> tuple[datetime, datetime, list[Disclosure]]:
    """The patient's disclosures in ``[since, until)`` (default: the six years before now), oldest first."""
    start, end = window(since, until, default=SIX_YEARS)
    found: list[Disclosure] = []
    events = await repository.patient_events(
        session, patient_id, event_types=sorted(DISCLOSURE_EVENTS), since=start, until=end
    )
    users = await _names(session, [row["actor_subject"] for row in events])
    for row in events:
        category = (
            DisclosureCategory.BREAK_GLASS
            if row["break_glass"]
            else DISCLOSURE_EVENTS.get(row["event_type"], DisclosureCategory.BREAK_GLASS)
        )
        to_payer = category is DisclosureCategory.PAYER_EXCHANGE
        kind = "payer" if to_payer else ("api_client" if row["actor_kind"] == "client" else "user")
        recipient = row["payer"] if to_payer else (row["client_id"] or row["actor_subject"])
        found.append(
            Disclosure(
                tenant_id=row["tenant_id"],
                occurred_at=row["occurred_at"],
                category=category,
                recipient_kind=kind,
                recipient=recipient,
                recipient_name=None if to_payer else users.get(row["actor_subject"] or ""),
                purpose=row["event_type"],
                action=row["action"],
                what=row["resource_type"],
                resource_ids=tuple(row["resource_ids"] or ()),
                event_id=row["id"],
                accountable=EXEMPTIONS[category] is None,
                exemption=EXEMPTIONS[category],
            )
        )
    for row in await repository.claim_submissions(session, patient_id, since=start, until=end):
        category = DisclosureCategory.CLAIM_SUBMISSION
        found.append(
            Disclosure(
                tenant_id=row["tenant_id"],
                occurred_at=row["sent_at"],
                category=category,
                recipient_kind="payer",
                recipient=row["payer_id"],
                recipient_name=None,
                purpose="claim.submit",
                action=Action.CREATE.value,
                what="claim",
                resource_ids=(row["claim_id"], row["batch_id"]),
                event_id=None,
                accountable=False,
                exemption=EXEMPTIONS[category],
            )
        )
    if accountable_only:
        found = [d for d in found if d.accountable]
    found.sort(key=lambda d: (d.occurred_at, str(d.event_id or d.resource_ids[0])))
    await _record(
        session,
        "audit.disclosures",
        actor=actor,
        request=request,
        patient_ids=(patient_id,),
        detail={
            "filter.since": format_instant(start),
            "filter.until": format_instant(end),
            "accountable_only": accountable_only,
            "returned": len(found),
        },
    )
    return start, end, found


async def _names(session: AsyncSession, subjects: Sequence[str | None]) -> dict[str, str]:
    """Display names of the people among ``subjects`` (principal subjects that are app user ids)."""
    return {subject: name for subject, (name, _email) in (await people_by_subject(session, subjects)).items()}


# --- timelines --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timeline:
    summary: list[dict[str, Any]]
    page: list[AuditRecord]
    next_cursor: str | None


async def _page(
    session: AsyncSession, filters: audit_repository.Filters, *, limit: int, cursor: str | None
) -> tuple[list[AuditRecord], str | None]:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(
            "limit out of range", errors=[FieldError("query:limit", f"must be 1..{MAX_LIMIT}")]
        )
    after = decode_cursor(cursor) if cursor else None
    rows = await audit_repository.search_page(session, filters, limit=limit + 1, after=after)
    page, more = rows[:limit], len(rows) > limit
    return page, (encode_cursor(page[-1]) if more and page else None)


async def patient_timeline(
    session: AsyncSession,
    patient_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None,
    actor: Principal,
    request: RequestInfo,
) -> Timeline:
    """Who touched this patient's record: one row per practice and actor (with the person's name), and the
    events themselves, newest first."""
    summary = await repository.actors_of_patient(session, patient_id)
    names = await _names(session, [row["actor"] for row in summary])
    for row in summary:
        row["name"] = names.get(row["actor"] or "")
    page, next_cursor = await _page(
        session, audit_repository.Filters(patient_id=patient_id), limit=limit, cursor=cursor
    )
    await _record(
        session,
        "audit.timeline",
        actor=actor,
        request=request,
        patient_ids=(patient_id,),
        detail={"timeline": "patient", "returned": len(page), "paged": cursor is not None},
    )
    return Timeline(summary, page, next_cursor)


async def user_timeline(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None,
    actor: Principal,
    request: RequestInfo,
) -> Timeline:
    """What this person touched: one row per practice and patient, and their events, newest first."""
    subject = str(user_id)
    summary = await repository.patients_of_actor(session, subject)
    page, next_cursor = await _page(
        session, audit_repository.Filters(actor_subject=subject), limit=limit, cursor=cursor
    )
    await _record(
        session,
        "audit.timeline",
        actor=actor,
        request=request,
        detail={
            "timeline": "user",
            "filter.user": subject,
            "returned": len(page),
            "paged": cursor is not None,
        },
    )
    return Timeline(summary, page, next_cursor)


# --- anomaly flags ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Flag:
    rule: AnomalyRule
    rule_text: str
    tenant_id: uuid.UUID
    actor_subject: str
    actor_name: str | None
    patient_id: uuid.UUID | None
    day: date | None
    grant_id: str | None
    count: int
    first_at: datetime
    last_at: datetime
    event_ids: tuple[uuid.UUID, ...]
    evidence: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AnomalyReport:
    since: datetime
    until: datetime
    hours: BusinessHours
    spike: SpikeRule
    flags: list[Flag]


async def anomalies(
    session: AsyncSession,
    keystore: KeyStore,
    *,
    since: datetime | None,
    until: datetime | None,
    hours: BusinessHours,
    spike: SpikeRule,
    actor: Principal,
    request: RequestInfo,
) -> AnomalyReport:
    """Every flag raised in ``[since, until)`` (default: the last seven days), by rule, newest first."""
    start, end = window(since, until, default=ANOMALY_WINDOW, longest=MAX_ANOMALY_WINDOW)
    flags: list[Flag] = []
    flags += await _spikes(session, start, end, hours.timezone, spike)
    flags += [
        _flag(AnomalyRule.AFTER_HOURS, hours.text(), g, day=g.key)
        for g in await repository.after_hours(
            session, since=start, until=end, tz=hours.timezone, start=hours.start, end=hours.end
        )
    ]
    flags += [
        _flag(AnomalyRule.BREAK_GLASS, BREAK_GLASS_TEXT, g, grant_id=g.key)
        for g in await repository.break_glass_use(session, since=start, until=end)
    ]
    flags += await _same_family_name(session, keystore, start, end, actor=actor, request=request)
    names = await _names(session, [f.actor_subject for f in flags])
    flags = [_named(f, names.get(f.actor_subject)) for f in flags]
    flags.sort(key=lambda f: (f.last_at, f.rule.value, f.actor_subject), reverse=True)
    counts: Detail = {f"flags.{rule.value}": sum(f.rule is rule for f in flags) for rule in AnomalyRule}
    await _record(
        session,
        "audit.anomalies",
        actor=actor,
        request=request,
        detail={"filter.since": format_instant(start), "filter.until": format_instant(end), **counts},
    )
    return AnomalyReport(start, end, hours, spike, flags)


def _flag(
    rule: AnomalyRule,
    text: str,
    group: repository.Group,
    *,
    day: date | None = None,
    grant_id: str | None = None,
    patient_id: uuid.UUID | None = None,
    evidence: Mapping[str, float] | None = None,
) -> Flag:
    return Flag(
        rule=rule,
        rule_text=text,
        tenant_id=group.tenant_id,
        actor_subject=group.actor_subject,
        actor_name=None,
        patient_id=patient_id,
        day=day,
        grant_id=grant_id,
        count=group.count,
        first_at=group.first_at,
        last_at=group.last_at,
        event_ids=group.event_ids,
        evidence=evidence or {},
    )


def _named(flag: Flag, name: str | None) -> Flag:
    from dataclasses import replace

    return replace(flag, actor_name=name)


async def _spikes(
    session: AsyncSession, start: datetime, end: datetime, tz: str, rule: SpikeRule
) -> list[Flag]:
    groups = await repository.daily_person_counts(
        session, since=start - timedelta(days=rule.baseline_days + 1), until=end, tz=tz
    )
    by_person: dict[tuple[uuid.UUID, str], dict[date, repository.Group]] = defaultdict(dict)
    for group in groups:
        by_person[(group.tenant_id, group.actor_subject)][group.key] = group
    flags = []
    for days in by_person.values():
        in_window = [d for d, g in days.items() if g.last_at >= start]
        daily = {d: g.count for d, g in days.items()}
        for found in spikes(daily, in_window, rule):
            flags.append(
                _flag(
                    AnomalyRule.VOLUME_SPIKE,
                    rule.text(),
                    days[found.day],
                    day=found.day,
                    evidence={
                        "baseline_mean": found.mean,
                        "baseline_stddev": found.stddev,
                        "threshold": found.threshold,
                        "baseline_days": rule.baseline_days,
                    },
                )
            )
    return flags


async def _same_family_name(
    session: AsyncSession,
    keystore: KeyStore,
    start: datetime,
    end: datetime,
    *,
    actor: Principal,
    request: RequestInfo,
) -> list[Flag]:
    touches = await repository.person_patient_touches(session, since=start, until=end)
    people = await people_by_subject(session, {t.actor_subject for t in touches})
    family = {subject: family_name_of(name) for subject, (name, _email) in people.items()}
    # Only the patients of people whose family name is known are opened, practice by practice.
    wanted: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    for touch in touches:
        if family.get(touch.actor_subject):
            wanted[touch.tenant_id].add(touch.key)
    patient_family: dict[tuple[uuid.UUID, uuid.UUID], str] = {}
    for tenant_id, patient_ids in sorted(wanted.items()):
        sealed = await repository.patient_family_names(session, tenant_id, sorted(patient_ids))
        if not sealed:
            continue
        keyring = await keystore.keyring(session, TenantId(tenant_id))
        opener = keyring.opener(Patient.__tablename__, ("family_name",))
        opened = []
        for patient_id, ciphertext in sealed:
            try:
                [value] = opener.open(patient_id, [ciphertext])
            except DecryptionError:
                continue  # a patient whose keys were shredded has no name left to compare
            opened.append(patient_id)
            if value:
                patient_family[(tenant_id, patient_id)] = name_key(value)
        await _record(
            session,
            "audit.anomaly_scan",
            actor=actor,
            request=request,
            tenants=(tenant_id,),
            action=Action.READ,
            resource_type="patient",
            patient_ids=opened,
            detail={
                "rule": AnomalyRule.SAME_FAMILY_NAME.value,
                "columns": "family_name",
                "count": len(opened),
            },
        )
    return [
        _flag(AnomalyRule.SAME_FAMILY_NAME, SAME_FAMILY_NAME_TEXT, touch, patient_id=touch.key)
        for touch in touches
        if family.get(touch.actor_subject)
        and patient_family.get((touch.tenant_id, touch.key)) == family[touch.actor_subject]
    ]
