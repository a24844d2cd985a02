"""A stored audit record and its canonical encoding (what the hash chain covers).

hash = SHA-256(prev_hash || canonical), where canonical is the UTF-8 JSON of every event field and its chain
position (seq) with sorted keys and no whitespace. A request inserts the event; the chainer
(``rcm.audit.chainer``) later gives it its position and hashes (``rcm.audit_seal``). Until then the record is
unsealed: ``seq``, ``prev_hash`` and ``hash`` are None. The offline verifier (``audit/verify_export.py``)
re-implements exactly this encoding without importing the app: change one, change the other and bump
``CANONICAL_VERSION``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

CANONICAL_VERSION = 1
GENESIS_HASH = bytes(32)  # prev_hash of a tenant's first event

DetailValue = str | int | bool | None


def format_instant(value: datetime) -> str:
    """Fixed-width UTC instant with microseconds, the precision PostgreSQL keeps."""
    if value.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_instant(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def canonical_bytes(fields: Mapping[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def chain_hash(prev_hash: bytes, canonical: bytes) -> bytes:
    return hashlib.sha256(prev_hash + canonical).digest()


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One row of ``rcm.audit_event`` with its seal (its place in its tenant's chain), if sealed yet."""

    tenant_id: uuid.UUID
    seq: int | None
    occurred_at: datetime
    id: uuid.UUID
    event_type: str
    action: str
    outcome: str
    actor_kind: str | None
    actor_subject: str | None
    actor_roles: tuple[str, ...]
    client_id: str | None
    actor_hint: str | None
    resource_type: str | None
    resource_ids: tuple[uuid.UUID, ...]
    patient_ids: tuple[uuid.UUID, ...]
    source_ip: str | None
    request_id: str
    trace_id: str
    detail: Mapping[str, DetailValue]
    prev_hash: bytes | None
    hash: bytes | None

    @property
    def sealed(self) -> bool:
        return self.seq is not None and self.hash is not None and self.prev_hash is not None

    def canonical_fields(self, *, seq: int | None = None) -> dict[str, Any]:
        return {
            "v": CANONICAL_VERSION,
            "tenant_id": str(self.tenant_id),
            "seq": self.seq if seq is None else seq,
            "occurred_at": format_instant(self.occurred_at),
            "id": str(self.id),
            "event_type": self.event_type,
            "action": self.action,
            "outcome": self.outcome,
            "actor_kind": self.actor_kind,
            "actor_subject": self.actor_subject,
            "actor_roles": list(self.actor_roles),
            "client_id": self.client_id,
            "actor_hint": self.actor_hint,
            "resource_type": self.resource_type,
            "resource_ids": [str(r) for r in self.resource_ids],
            "patient_ids": [str(p) for p in self.patient_ids],
            "source_ip": self.source_ip,
            "request_id": self.request_id,
            "trace_id": self.trace_id,
            "detail": dict(self.detail),
        }

    def canonical(self, *, seq: int | None = None) -> bytes:
        return canonical_bytes(self.canonical_fields(seq=seq))

    def computed_hash(self, *, seq: int | None = None, prev_hash: bytes | None = None) -> bytes:
        """The hash this record's content and prev_hash imply (``seq``/``prev_hash`` override the stored)."""
        prev = prev_hash if prev_hash is not None else self.prev_hash
        if prev is None or (seq is None and self.seq is None):
            raise ValueError("an unsealed record has no chain position")
        return chain_hash(prev, self.canonical(seq=seq))

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> AuditRecord:
        return cls(
            tenant_id=row["tenant_id"],
            seq=row.get("seq"),
            occurred_at=row["occurred_at"],
            id=row["id"],
            event_type=row["event_type"],
            action=row["action"],
            outcome=row["outcome"],
            actor_kind=row["actor_kind"],
            actor_subject=row["actor_subject"],
            actor_roles=tuple(row["actor_roles"] or ()),
            client_id=row["client_id"],
            actor_hint=row["actor_hint"],
            resource_type=row["resource_type"],
            resource_ids=tuple(row["resource_ids"] or ()),
            patient_ids=tuple(row["patient_ids"] or ()),
            source_ip=row["source_ip"],
            request_id=row["request_id"],
            trace_id=row["trace_id"],
            detail=dict(row["detail"] or {}),
            prev_hash=None if row.get("prev_hash") is None else bytes(row["prev_hash"]),
            hash=None if row.get("hash") is None else bytes(row["hash"]),
        )

    def as_row(self) -> dict[str, Any]:
        """The ``audit_event`` row (the event only: its seal is the chainer's)."""
        return {
            "tenant_id": self.tenant_id,
            "occurred_at": self.occurred_at,
            "id": self.id,
            "event_type": self.event_type,
            "action": self.action,
            "outcome": self.outcome,
            "actor_kind": self.actor_kind,
            "actor_subject": self.actor_subject,
            "actor_roles": list(self.actor_roles),
            "client_id": self.client_id,
            "actor_hint": self.actor_hint,
            "resource_type": self.resource_type,
            "resource_ids": list(self.resource_ids),
            "patient_ids": list(self.patient_ids),
            "source_ip": self.source_ip,
            "request_id": self.request_id,
            "trace_id": self.trace_id,
            "detail": dict(self.detail),
        }
