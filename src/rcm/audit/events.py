"""What one audit event says. No PHI values ever: ids, types, codes and outcomes only.

Action and outcome codes follow FHIR AuditEvent (action C/R/U/D/E; outcome 0/4/8/12).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from rcm.identity.principal import Principal
from rcm.kit.models import utcnow
from rcm.kit.tenant import TenantId


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
