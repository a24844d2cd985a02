"""What one audit event says. No PHI values ever: ids, types, codes and outcomes only.

Action and outcome codes follow FHIR AuditEvent (action C/R/U/D/E; outcome 0/4/8/12).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rcm.identity.principal import Principal
from rcm.kit.models import utcnow
from rcm.kit.requestid import request_id_of
from rcm.kit.telemetry import current_trace_id
from rcm.kit.tenant import TenantId

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection


class Action(enum.StrEnum):
    CREATE = "C"
    READ = "R"
    UPDATE = "U"
    DELETE = "D"
    EXECUTE = "E"  # token issue, login, search, export, break-glass, key rotation


class Outcome(enum.StrEnum):
    SUCCESS = "0"
    MINOR_FAILURE = "4"  # refused: not found / not yours, invalid input
    SERIOUS_FAILURE = "8"  # denied: authentication or authorization failure
    MAJOR_FAILURE = "12"  # the operation failed on our side


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """Where the access came from; built once per request (or job) by the boundary."""

    request_id: str
    trace_id: str
    source_ip: str | None = None


def request_info_from(connection: ASGIConnection[Any, Any, Any, Any] | None) -> RequestInfo:
    """THE way a request boundary describes its request to the audit trail.

    The request id is the one the request-id middleware chose and echoes in X-Request-ID (never the raw
    header), so an auditor can match an event to what the caller saw. ``None`` is an in-process caller
    (CLI, job): a fresh id and no source address.
    """
    if connection is None:
        return RequestInfo(request_id=uuid.uuid4().hex, trace_id=current_trace_id(), source_ip=None)
    client = connection.client
    return RequestInfo(
        request_id=request_id_of(connection.scope),
        trace_id=current_trace_id(),
        source_ip=client.host if client else None,
    )


@dataclass(frozen=True, slots=True)
class AuditEvent:
    tenant_id: TenantId  # PLATFORM_TENANT for events that belong to no practice
    event_type: str  # dotted: "patient.read", "encounter.create", "token.issue", "access.denied", ...
    action: Action
    outcome: Outcome
    request: RequestInfo
    actor: Principal | None = None  # None for anonymous callers (failed token requests)
    actor_hint: str | None = None  # e.g. the client_id an anonymous caller claimed; never a secret
    resource_type: str | None = None
    resource_ids: tuple[uuid.UUID, ...] = ()  # every id read or written (lists record all ids returned)
    patient_ids: tuple[uuid.UUID, ...] = ()  # the patients whose PHI was touched, for "search by patient"
    detail: Mapping[str, str | int | bool | None] = field(default_factory=dict)  # no PHI
    occurred_at: datetime = field(default_factory=utcnow)
    id: uuid.UUID = field(default_factory=uuid.uuid4)
