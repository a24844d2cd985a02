"""The auditor console in the browser: ``/app/audit`` (search with results and exports), a patient's
timeline and accounting of disclosures, a person's timeline, the anomaly flags and chain verification.

Each page calls the same services as ``/api/v1/audit`` with the same guards (auditor role, ``audit:read``)
and the same tenant grant (``auditor_session``: the practices the auditor may read), so every page view is
recorded in the trail as the API call would be. Dates in the forms are whole UTC days.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Template

from rcm.audit import service as audit_service
from rcm.audit.controllers import (
    AUDITOR_GUARDS,
    auditor_session,
    requires_auditor_or_mfa_admin,
    verify_readable,
)
from rcm.audit.events import Action, Outcome
from rcm.audit.records import format_instant
from rcm.auditor import service
from rcm.auditor.rules import (
    BREAK_GLASS_TEXT,
    DISCLOSURE_DEFINITION,
    SAME_FAMILY_NAME_TEXT,
    BusinessHours,
    SpikeRule,
)
from rcm.config import Settings
from rcm.kit.errors import FieldError, InvalidInput
from rcm.web.render import PAGE_EXCEPTION_HANDLERS, PAGE_OPT, page

AUDIT_PATH = "/app/audit"
PAGE_SIZE = 50

# A form sends its empty fields too ("since="): every field is text here, and blank means not given.
Day = Annotated[str | None, QueryParameter(max_length=10, description="A whole UTC day, YYYY-MM-DD")]
Text = Annotated[str | None, QueryParameter(max_length=320)]
Code = Annotated[str | None, QueryParameter(max_length=2)]


def _day(value: str | None, name: str) -> date | None:
    value = _blank(value)
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            "A filter is not valid.", errors=[FieldError(f"query:{name}", "is not a day (YYYY-MM-DD)")]
        ) from None


def _code(kind: type[Action] | type[Outcome], value: str | None, name: str) -> Any:
    value = _blank(value)
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        raise InvalidInput(
            "A filter is not valid.", errors=[FieldError(f"query:{name}", "is not one of the codes")]
        ) from None


def _start(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, time(0), tzinfo=UTC)


def _end(day: date | None) -> datetime | None:
    """The exclusive end of an inclusive last day."""
    return None if day is None else datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)


def _blank(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


def _uuid(value: str | None, name: str) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidInput(
            "A filter is not valid.", errors=[FieldError(f"query:{name}", "is not an id")]
        ) from None


class AuditPages(Controller):
    path = AUDIT_PATH
    tags = ["pages"]
    include_in_schema = False
    opt = PAGE_OPT
    exception_handlers = PAGE_EXCEPTION_HANDLERS

    @get("/", guards=list(AUDITOR_GUARDS))
    async def search(
        self,
        request: Request[Any, Any, Any],
        *,
        actor_email: Text = None,
        patient_id: Text = None,
        resource_type: Text = None,
        event_type: Text = None,
        action: Code = None,
        outcome: Code = None,
        tenant: Text = None,
        since: Day = None,
        until: Day = None,
        cursor: FromQuery[str | None] = None,
    ) -> Template:
        """The access log, searched by person, patient, resource, action, outcome, practice and day."""
        return await self._search(
            request,
            actor_email=actor_email,
            patient_id=patient_id,
            resource_type=resource_type,
            event_type=event_type,
            action=_code(Action, action, "action"),
            outcome=_code(Outcome, outcome, "outcome"),
            tenant=tenant,
            since=_day(since, "since"),
            until=_day(until, "until"),
            cursor=_blank(cursor),
        )

    async def _search(
        self,
        request: Request[Any, Any, Any],
        *,
        actor_email: str | None,
        patient_id: str | None,
        resource_type: str | None,
        event_type: str | None,
        action: Action | None,
        outcome: Outcome | None,
        tenant: str | None,
        since: date | None,
        until: date | None,
        cursor: str | None,
    ) -> Template:
        query = audit_service.AuditQuery(
            actor_email=_blank(actor_email),
            tenant=_blank(tenant),
            patient_id=_uuid(_blank(patient_id), "patient_id"),
            resource_type=_blank(resource_type),
            event_type=_blank(event_type),
            action=action,
            outcome=outcome,
            since=_start(since),
            until=_end(until),
        )
        # The same filters as the API's, for the export links and the next page.
        api_params = {
            key: value
            for key, value in {
                "actor_email": query.actor_email,
                "tenant": query.tenant,
                "patient_id": str(query.patient_id) if query.patient_id else None,
                "resource_type": query.resource_type,
                "event_type": query.event_type,
                "action": action.value if action else None,
                "outcome": outcome.value if outcome else None,
                "since": format_instant(query.since) if query.since else None,
                "until": format_instant(query.until) if query.until else None,
            }.items()
            if value is not None
        }
        form = {
            "actor_email": query.actor_email or "",
            "patient_id": str(query.patient_id or ""),
            "resource_type": query.resource_type or "",
            "event_type": query.event_type or "",
            "action": action.value if action else "",
            "outcome": outcome.value if outcome else "",
            "tenant": query.tenant or "",
            "since": since.isoformat() if since else "",
            "until": until.isoformat() if until else "",
        }
        async with auditor_session(request) as (session, caller, info):
            events, next_cursor = await audit_service.search(
                session, query, limit=PAGE_SIZE, cursor=cursor, actor=caller, request=info
            )
        page_params = {k: v for k, v in form.items() if v}
        return page(
            request,
            "audit_search.html",
            title="Access log",
            active_nav="audit",
            form=form,
            events=events,
            actions=list(Action),
            outcomes=list(Outcome),
            next_url=f"{AUDIT_PATH}/?{urlencode({**page_params, 'cursor': next_cursor})}"
            if next_cursor
            else None,
            csv_url=f"/api/v1/audit/events.csv?{urlencode(api_params)}",
            ndjson_url=f"/api/v1/audit/events.ndjson?{urlencode(api_params)}",
        )

    @get("/patients/{patient_id:uuid}", guards=list(AUDITOR_GUARDS))
    async def patient(
        self,
        request: Request[Any, Any, Any],
        patient_id: FromPath[uuid.UUID],
        *,
        cursor: FromQuery[str | None] = None,
    ) -> Template:
        """Who touched this patient's record, and the accounting of its disclosures."""
        async with auditor_session(request) as (session, caller, info):
            timeline = await service.patient_timeline(
                session, patient_id, limit=PAGE_SIZE, cursor=cursor, actor=caller, request=info
            )
            since, until, disclosures = await service.disclosures(
                session,
                patient_id,
                since=None,
                until=None,
                accountable_only=False,
                actor=caller,
                request=info,
            )
        return page(
            request,
            "audit_patient.html",
            title="Patient record: who touched it",
            active_nav="audit",
            patient_id=patient_id,
            timeline=timeline,
            disclosures=disclosures,
            since=since,
            until=until,
            definition=DISCLOSURE_DEFINITION,
            next_url=f"{AUDIT_PATH}/patients/{patient_id}?{urlencode({'cursor': timeline.next_cursor})}"
            if timeline.next_cursor
            else None,
        )

    @get("/users/{user_id:uuid}", guards=list(AUDITOR_GUARDS))
    async def user(
        self,
        request: Request[Any, Any, Any],
        user_id: FromPath[uuid.UUID],
        *,
        cursor: FromQuery[str | None] = None,
    ) -> Template:
        """What this person touched."""
        async with auditor_session(request) as (session, caller, info):
            timeline = await service.user_timeline(
                session, user_id, limit=PAGE_SIZE, cursor=cursor, actor=caller, request=info
            )
        return page(
            request,
            "audit_user.html",
            title="Person: what they touched",
            active_nav="audit",
            user_id=user_id,
            timeline=timeline,
            next_url=f"{AUDIT_PATH}/users/{user_id}?{urlencode({'cursor': timeline.next_cursor})}"
            if timeline.next_cursor
            else None,
        )

    @get("/anomalies", guards=list(AUDITOR_GUARDS))
    async def anomalies(
        self, request: Request[Any, Any, Any], *, since: Day = None, until: Day = None
    ) -> Template:
        """The anomaly flags of the window (default: the last seven days), each with its rule."""
        since_day, until_day = _day(since, "since"), _day(until, "until")
        settings: Settings = request.app.state.settings
        hours = BusinessHours.parse(settings.audit_business_timezone, settings.audit_business_hours)
        spike = SpikeRule()
        async with auditor_session(request) as (session, caller, info):
            report = await service.anomalies(
                session,
                request.app.state.keystore,
                since=_start(since_day),
                until=_end(until_day),
                hours=hours,
                spike=spike,
                actor=caller,
                request=info,
            )
        return page(
            request,
            "audit_anomalies.html",
            title="Anomalies",
            active_nav="anomalies",
            report=report,
            rules=[
                ("volume_spike", spike.text()),
                ("after_hours", hours.text()),
                ("break_glass", BREAK_GLASS_TEXT),
                ("same_family_name", SAME_FAMILY_NAME_TEXT),
            ],
            form={
                "since": since_day.isoformat() if since_day else "",
                "until": until_day.isoformat() if until_day else "",
            },
        )

    @get("/verify", guards=[requires_auditor_or_mfa_admin])
    async def verify(self, request: Request[Any, Any, Any]) -> Template:
        """The chain verification button, and a link to the earlier verifications in the log."""
        return self._verify_page(request, None)

    @post("/verify", status_code=200, guards=[requires_auditor_or_mfa_admin])
    async def verify_now(self, request: Request[Any, Any, Any]) -> Template:
        """The button's POST (CSRF-checked by the session middleware): each practice's hash chain against
        its signed checkpoints and their external copy. Never on a GET: a verification reads every event,
        and a link on another site must not start one in a signed-in auditor's name."""
        return self._verify_page(request, await verify_readable(request))

    @staticmethod
    def _verify_page(request: Request[Any, Any, Any], report: audit_service.VerifyReport | None) -> Template:
        return page(
            request,
            "audit_verify.html",
            title="Verify the access log",
            active_nav="verify",
            report=report,
            history=f"{AUDIT_PATH}/?{urlencode({'event_type': 'audit.verify'})}",
        )
