"""Stored audit records as FHIR R4 AuditEvent resources (for auditors' tools and SIEMs).

The FHIR mapping is lossy by nature, so each resource also carries the record's exact canonical encoding and
its chain links in an extension: the offline verifier re-hashes that and checks the visible fields agree.
"""

from __future__ import annotations

import base64
from typing import Any

from rcm.audit.records import AuditRecord, format_instant

CHAIN_EXTENSION = "https://rcm.dev/fhir/StructureDefinition/audit-chain"
EVENT_TYPE_SYSTEM = "https://rcm.dev/fhir/CodeSystem/audit-event-type"
ROLE_SYSTEM = "https://rcm.dev/fhir/CodeSystem/role"
RESOURCE_SYSTEM_PREFIX = "https://rcm.dev/fhir/NamingSystem/"
ENTITY_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE_SYSTEM = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/security-source-type"


def _chain(record: AuditRecord) -> list[dict[str, Any]]:
    """The chain links; an event the chainer has not sealed yet says so and carries no position."""
    parts: list[dict[str, Any]] = [{"url": "tenant", "valueString": str(record.tenant_id)}]
    if record.seq is None or record.prev_hash is None or record.hash is None:
        return [*parts, {"url": "sealed", "valueBoolean": False}]
    return [
        *parts,
        {"url": "seq", "valueString": str(record.seq)},
        {"url": "prevHash", "valueString": record.prev_hash.hex()},
        {"url": "hash", "valueString": record.hash.hex()},
        {"url": "record", "valueBase64Binary": base64.b64encode(record.canonical()).decode()},
    ]


def to_fhir(record: AuditRecord) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(record.id),
        "extension": [{"url": CHAIN_EXTENSION, "extension": _chain(record)}],
        "type": {"system": EVENT_TYPE_SYSTEM, "code": record.event_type},
        "action": record.action,
        "recorded": format_instant(record.occurred_at),
        "outcome": record.outcome,
        "agent": [_agent(record)],
        "source": {
            "site": str(record.tenant_id),
            "observer": {"display": "RCM"},
            "type": [{"system": SOURCE_TYPE_SYSTEM, "code": "4", "display": "Application Server"}],
        },
    }
    entities = _entities(record)
    if entities:
        resource["entity"] = entities
    return resource


def _agent(record: AuditRecord) -> dict[str, Any]:
    agent: dict[str, Any] = {"requestor": True}
    if record.actor_subject is not None:
        agent["who"] = {
            "identifier": {
                "system": RESOURCE_SYSTEM_PREFIX + (record.actor_kind or "principal"),
                "value": record.actor_subject,
            }
        }
    else:
        agent["who"] = {"display": "anonymous"}
    if record.client_id is not None:
        agent["altId"] = record.client_id
    elif record.actor_hint is not None:
        agent["altId"] = record.actor_hint
    if record.actor_roles:
        agent["role"] = [{"coding": [{"system": ROLE_SYSTEM, "code": role}]} for role in record.actor_roles]
    if record.source_ip is not None:
        agent["network"] = {"address": record.source_ip, "type": "2"}  # 2 = IP address
    return agent


def _entities(record: AuditRecord) -> list[dict[str, Any]]:
    entities: list[dict[str, Any]] = [
        {
            "what": {"reference": f"Patient/{patient_id}"},
            "type": {"system": ENTITY_TYPE_SYSTEM, "code": "1", "display": "Person"},
            "role": {"system": OBJECT_ROLE_SYSTEM, "code": "1", "display": "Patient"},
        }
        for patient_id in record.patient_ids
    ]
    system = RESOURCE_SYSTEM_PREFIX + (record.resource_type or "resource")
    entities.extend(
        {
            "what": {"identifier": {"system": system, "value": str(resource_id)}},
            "type": {"system": ENTITY_TYPE_SYSTEM, "code": "2", "display": "System Object"},
        }
        for resource_id in record.resource_ids
    )
    if record.detail:
        entities.append(
            {
                "what": {
                    "identifier": {"system": RESOURCE_SYSTEM_PREFIX + "request", "value": record.request_id}
                },
                "type": {"system": ENTITY_TYPE_SYSTEM, "code": "2", "display": "System Object"},
                "detail": [
                    {"type": key, "valueString": "null" if value is None else str(value)}
                    for key, value in sorted(record.detail.items())
                ],
            }
        )
    return entities
