"""``/api/v1/audit``: the auditor console's accounting of disclosures, timelines and anomaly flags.

Same callers and tenant grant as the access-log search (``rcm.audit.controllers``): the auditor role with
``audit:read``, limited to the practices of ``auditor_tenants`` (or every practice with ``all_tenants``).
A patient is named by its id only, never by PHI in the URL. Every call records its own audit event.
"""

from __future__ import annotations

import uuid
from functools import cache
from typing import Annotated, Any
from zoneinfo import available_timezones

import msgspec
from litestar import Controller, Request, get
from litestar.params import FromPath, FromQuery, QueryParameter

from rcm.audit.controllers import AUDITOR_GUARDS, AuditEventOut, Since, Until, auditor_session, event_out
from rcm.audit.records import format_instant
from rcm.audit.service import MAX_LIMIT
from rcm.auditor import service
from rcm.auditor.rules import (
    BREAK_GLASS_TEXT,
    DISCLOSURE_DEFINITION,
    SAME_FAMILY_NAME_TEXT,
    AnomalyRule,
    BusinessHours,
    DisclosureCategory,
    SpikeRule,
)
from rcm.config import Settings
from rcm.kit.errors import FieldError, InvalidInput, problem_responses

_ERRORS = problem_responses(400, 401, 403, 404, 422, 429)


class DisclosureOut(msgspec.Struct):
    tenant_id: uuid.UUID
    occurred_at: str
    category: DisclosureCategory
    recipient_kind: str
    recipient: str | None
    recipient_name: str | None
    purpose: str
    action: str
    what: str | None
    resource_ids: list[uuid.UUID]
    event_id: uuid.UUID | None
    accountable: bool
    exemption: str | None


class DisclosureAccounting(msgspec.Struct):
    """45 CFR 164.528 accounting of disclosures of one patient."""

    patient_id: uuid.UUID
    since: str
    until: str
    definition: str
    items: list[DisclosureOut]


class PatientActorOut(msgspec.Struct):
    tenant_id: uuid.UUID
    actor: str | None
    actor_kind: str | None
    client_id: str | None
    name: str | None
    events: int
    first_at: str
    last_at: str
    actions: list[str]
    event_types: list[str]


class PatientTimelineOut(msgspec.Struct):
    """Who touched this patient's record (one row per practice and actor) and the events, newest first."""

    patient_id: uuid.UUID
    actors: list[PatientActorOut]
    items: list[AuditEventOut]
    next_cursor: str | None


class UserPatientOut(msgspec.Struct):
    tenant_id: uuid.UUID
    patient_id: uuid.UUID
    events: int
    first_at: str
    last_at: str
    actions: list[str]


class UserTimelineOut(msgspec.Struct):
    """What this person touched (one row per practice and patient) and their events, newest first."""

    user_id: uuid.UUID
    patients: list[UserPatientOut]
    items: list[AuditEventOut]
    next_cursor: str | None


class FlagOut(msgspec.Struct):
    rule: AnomalyRule
    rule_text: str
    tenant_id: uuid.UUID
    actor_subject: str
    actor_name: str | None
    patient_id: uuid.UUID | None
    day: str | None
    grant_id: str | None
    count: int
    first_at: str
    last_at: str
    event_ids: list[uuid.UUID]
    evidence: dict[str, float]


class RuleOut(msgspec.Struct):
    rule: AnomalyRule
    text: str


class AnomalyReportOut(msgspec.Struct):
    since: str
    until: str
    rules: list[RuleOut]
    flags: list[FlagOut]


Limit = Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)]


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _hours(settings: Settings, timezone: str | None, hours: str | None) -> BusinessHours:
    zone = timezone or settings.audit_business_timezone
    errors = []
    # PostgreSQL converts the instants, so only names of the IANA database (which it shares) are taken.
    if zone not in _zones():
        errors.append(FieldError("query:timezone", "is not an IANA time zone name"))
    try:
        parsed = BusinessHours.parse(zone, hours or settings.audit_business_hours)
    except ValueError:
        errors.append(FieldError("query:business_hours", "must be HH:MM-HH:MM, start before end"))
    if errors:
        raise InvalidInput("A rule parameter is not valid.", errors=errors)
    return parsed


class AuditorConsoleController(Controller):
    path = "/api/v1/audit"
    tags = ["audit"]
    guards = list(AUDITOR_GUARDS)

    @get("/patients/{patient_id:uuid}/disclosures", responses=_ERRORS)
    async def disclosures(
        self,
        request: Request[Any, Any, Any],
        patient_id: FromPath[uuid.UUID],
        *,
        since: Since = None,
        until: Until = None,
        accountable_only: FromQuery[bool] = False,
    ) -> DisclosureAccounting:
        """The patient's accounting of disclosures (45 CFR 164.528), oldest first: default window the six
        years before now. ``definition`` says which events count."""
        async with auditor_session(request) as (session, caller, info):
            start, end, found = await service.disclosures(
                session,
                patient_id,
                since=since,
                until=until,
                accountable_only=accountable_only,
                actor=caller,
                request=info,
            )
        return DisclosureAccounting(
            patient_id=patient_id,
            since=format_instant(start),
            until=format_instant(end),
            definition=DISCLOSURE_DEFINITION,
            items=[
                DisclosureOut(
                    tenant_id=d.tenant_id,
                    occurred_at=format_instant(d.occurred_at),
                    category=d.category,
                    recipient_kind=d.recipient_kind,
                    recipient=d.recipient,
                    recipient_name=d.recipient_name,
                    purpose=d.purpose,
                    action=d.action,
                    what=d.what,
                    resource_ids=list(d.resource_ids),
                    event_id=d.event_id,
                    accountable=d.accountable,
                    exemption=d.exemption,
                )
                for d in found
            ],
        )

    @get("/patients/{patient_id:uuid}/timeline", responses=_ERRORS)
    async def patient_timeline(
        self,
        request: Request[Any, Any, Any],
        patient_id: FromPath[uuid.UUID],
        *,
        cursor: FromQuery[str | None] = None,
        limit: Limit = 100,
    ) -> PatientTimelineOut:
        """Who touched this patient's record, and when."""
        async with auditor_session(request) as (session, caller, info):
            timeline = await service.patient_timeline(
                session,
                patient_id,
                limit=limit,
                cursor=cursor,
                actor=caller,
                request=info,
            )
        return PatientTimelineOut(
            patient_id=patient_id,
            actors=[
                PatientActorOut(
                    tenant_id=row["tenant_id"],
                    actor=row["actor"],
                    actor_kind=row["actor_kind"],
                    client_id=row["client_id"],
                    name=row["name"],
                    events=int(row["events"]),
                    first_at=format_instant(row["first_at"]),
                    last_at=format_instant(row["last_at"]),
                    actions=sorted(row["actions"]),
                    event_types=sorted(row["event_types"]),
                )
                for row in timeline.summary
            ],
            items=[event_out(r) for r in timeline.page],
            next_cursor=timeline.next_cursor,
        )

    @get("/users/{user_id:uuid}/timeline", responses=_ERRORS)
    async def user_timeline(
        self,
        request: Request[Any, Any, Any],
        user_id: FromPath[uuid.UUID],
        *,
        cursor: FromQuery[str | None] = None,
        limit: Limit = 100,
    ) -> UserTimelineOut:
        """What this person touched, and when (within the practices the auditor may read)."""
        async with auditor_session(request) as (session, caller, info):
            timeline = await service.user_timeline(
                session, user_id, limit=limit, cursor=cursor, actor=caller, request=info
            )
        return UserTimelineOut(
            user_id=user_id,
            patients=[
                UserPatientOut(
                    tenant_id=row["tenant_id"],
                    patient_id=row["patient_id"],
                    events=int(row["events"]),
                    first_at=format_instant(row["first_at"]),
                    last_at=format_instant(row["last_at"]),
                    actions=sorted(row["actions"]),
                )
                for row in timeline.summary
            ],
            items=[event_out(r) for r in timeline.page],
            next_cursor=timeline.next_cursor,
        )

    @get("/anomalies", responses=_ERRORS)
    async def anomalies(
        self,
        request: Request[Any, Any, Any],
        *,
        since: Since = None,
        until: Until = None,
        timezone: Annotated[
            str | None, QueryParameter(max_length=64, description="IANA zone of the practice's hours")
        ] = None,
        business_hours: Annotated[
            str | None, QueryParameter(max_length=11, description="HH:MM-HH:MM, Monday to Friday")
        ] = None,
        spike_minimum: Annotated[int, QueryParameter(ge=1, le=100_000)] = 20,
        spike_sigmas: Annotated[float, QueryParameter(ge=0, le=100)] = 3.0,
    ) -> AnomalyReportOut:
        """Anomaly flags in the window (default: the last seven days, at most 92), newest first; each names
        the rule that raised it and carries the rule's text."""
        settings: Settings = request.app.state.settings
        hours = _hours(settings, timezone, business_hours)
        spike = SpikeRule(sigmas=spike_sigmas, minimum=spike_minimum)
        async with auditor_session(request) as (session, caller, info):
            report = await service.anomalies(
                session,
                request.app.state.keystore,
                since=since,
                until=until,
                hours=hours,
                spike=spike,
                actor=caller,
                request=info,
            )
        return AnomalyReportOut(
            since=format_instant(report.since),
            until=format_instant(report.until),
            rules=[
                RuleOut(AnomalyRule.VOLUME_SPIKE, spike.text()),
                RuleOut(AnomalyRule.AFTER_HOURS, hours.text()),
                RuleOut(AnomalyRule.BREAK_GLASS, BREAK_GLASS_TEXT),
                RuleOut(AnomalyRule.SAME_FAMILY_NAME, SAME_FAMILY_NAME_TEXT),
            ],
            flags=[
                FlagOut(
                    rule=f.rule,
                    rule_text=f.rule_text,
                    tenant_id=f.tenant_id,
                    actor_subject=f.actor_subject,
                    actor_name=f.actor_name,
                    patient_id=f.patient_id,
                    day=f.day.isoformat() if f.day else None,
                    grant_id=f.grant_id,
                    count=f.count,
                    first_at=format_instant(f.first_at),
                    last_at=format_instant(f.last_at),
                    event_ids=list(f.event_ids),
                    evidence=dict(f.evidence),
                )
                for f in report.flags
            ],
        )
