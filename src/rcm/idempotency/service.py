"""Idempotency-Key semantics (IETF draft-ietf-httpapi-idempotency-key-header).

The record is reserved with INSERT ... ON CONFLICT DO NOTHING at the start of the request transaction. A
concurrent duplicate blocks on the unique index until the first transaction ends: if it committed, the
duplicate finds the stored response and replays it; if it rolled back, the duplicate proceeds as the first.
Exactly one side effect either way, without application-level locks.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Request, Response
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter
from sqlalchemy import any_, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from rcm.audit.events import Action
from rcm.crypto.keyring import DecryptionError
from rcm.idempotency.models import IdempotencyRecord
from rcm.kit.errors import Conflict, FieldError, IdempotencyMismatch, InvalidInput, problem_responses
from rcm.tenancy.scope import TenantScope

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"  # "true" on a stored first response answering a retry
# The header as a handler parameter: optional in the signature so a missing key is our own 422 naming it.
IdemKey = Annotated[
    str | None,
    HeaderParameter(name=HEADER, description="Required on writes: a retry returns the first response"),
]
logger = logging.getLogger(__name__)
_TABLE = "idempotency_record"
_PENDING = 0
# Built once: parameters are bound at execution, so the compiled statement is cached (``.values(**kw)``
# with an ON CONFLICT clause would be compiled afresh on every request).
_RESERVE = (
    insert(IdempotencyRecord)
    .on_conflict_do_nothing(index_elements=["tenant_id", "principal", "key"])
    .returning(IdempotencyRecord.id)
)


@dataclass(frozen=True, slots=True)
class Stored:
    status_code: int
    body: bytes


def created_responses(model: type[Any], status: int = 201) -> dict[int, ResponseSpec]:
    """OpenAPI for an idempotent POST: its body and every error it can answer."""
    return {
        status: ResponseSpec(
            data_container=model, description="Done; a retry with the same Idempotency-Key gets this again"
        ),
        **problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 429),
    }


def request_fingerprint(route: str, body: bytes) -> bytes:
    """Hash of the route and the body's JSON canonical form (key order and whitespace do not matter)."""
    try:
        canonical = msgspec.json.encode(msgspec.json.decode(body), order="sorted") if body else b""
    except msgspec.DecodeError:
        canonical = body
    return hashlib.sha256(route.encode() + b"\x00" + canonical).digest()


def check_key(key: str | None) -> str:
    if key is None or not (1 <= len(key) <= 255) or not key.isprintable():
        raise InvalidInput(
            "Every POST needs an Idempotency-Key header (1-255 printable characters).",
            errors=[FieldError("header:Idempotency-Key", "is required" if key is None else "is invalid")],
        )
    return key


def principal_key(scope: TenantScope) -> str:
    principal = scope.principal
    return f"client:{principal.client_id}" if principal.client_id else f"user:{principal.subject}"


async def run_idempotent(
    scope: TenantScope,
    request: Request[Any, Any, Any],
    *,
    key: str | None,
    resource_type: str,
    produce: Callable[[], Awaitable[tuple[int, Any]]],
    body_fingerprint: bytes | None = None,
    media_type: str = "application/json",
    touched: Callable[[Any], tuple[list[uuid.UUID], list[uuid.UUID]]] | None = None,
) -> Response[bytes]:
    """Answer a create once per (caller, key): the first time by ``produce``, later from the record.

    The fingerprint covers the concrete path (tenant, parent ids) and the body, so reusing a key for another
    resource is the same 422 as reusing it with another body. A route that has read its (large) body in a
    canonical form already passes that form's hash as ``body_fingerprint`` instead of having it decoded
    again; ``touched`` names the records and patients a payload holds when it is not one record (a FHIR
    transaction-response), so a replay is audited as a read of them.
    """
    key = check_key(key)
    route = f"{request.method} {request.url.path}"
    if body_fingerprint is None:
        fingerprint = request_fingerprint(route, await request.body())
    else:
        fingerprint = hashlib.sha256(route.encode() + b"\x00" + body_fingerprint).digest()
    who = principal_key(scope)
    record_id = uuid.uuid4()
    reserved = (
        await scope.session.execute(
            _RESERVE,
            {
                "tenant_id": scope.tenant_id,
                "id": record_id,
                "principal": who,
                "key": key,
                "route": route,
                "request_hash": fingerprint,
                "status_code": _PENDING,
                "response_body": b"",
            },
        )
    ).scalar_one_or_none()
    if reserved is None:
        existing = (
            await scope.session.execute(
                select(IdempotencyRecord).where(
                    IdempotencyRecord.tenant_id == scope.tenant_id,
                    IdempotencyRecord.principal == who,
                    IdempotencyRecord.key == key,
                )
            )
        ).scalar_one()
        if existing.request_hash != fingerprint:
            raise IdempotencyMismatch(
                "This Idempotency-Key was used with a different request.",
                errors=[FieldError("header:Idempotency-Key", "was used with a different request")],
            )
        try:
            stored = scope.keyring.decrypt(
                table=_TABLE,
                column=_binding(
                    principal=existing.principal,
                    key=existing.key,
                    route=existing.route,
                    fingerprint=existing.request_hash,
                    status_code=existing.status_code,
                    resource_type=existing.resource_type,
                    resource_ids=existing.resource_ids,
                    patient_ids=existing.patient_ids,
                ),
                row_id=existing.id,
                ciphertext=existing.response_body,
            )
        except DecryptionError:
            # The record was altered beneath the API (another caller's response re-keyed to this one, a
            # status or audit field rewritten): never replay it. Nothing about the record is echoed.
            logger.warning(
                "idempotency record failed its integrity check", extra={"record_id": str(existing.id)}
            )
            raise Conflict(
                "The stored response for this Idempotency-Key failed its integrity check; "
                "send the request again with a new Idempotency-Key.",
                errors=[FieldError("header:Idempotency-Key", "its stored response cannot be verified")],
            ) from None
        # Handing the first response back discloses what it held: audited as a read of the same records.
        scope.audit(
            f"{existing.resource_type}.replay",
            Action.READ,
            resource_type=existing.resource_type,
            resource_ids=existing.resource_ids,
            patient_ids=existing.patient_ids,
            detail={"idempotent_replay": True},
        )
        return _response(existing.status_code, stored, replayed=True, media_type=media_type)

    status_code, payload = await produce()
    encoded = msgspec.json.encode(payload)
    if touched is not None:
        resource_ids, patient_ids = touched(payload)
    else:
        resource_ids, patient_ids = _ids_of(payload), _patients_of(resource_type, payload)
    binding = _binding(
        principal=who,
        key=key,
        route=route,
        fingerprint=fingerprint,
        status_code=status_code,
        resource_type=resource_type,
        resource_ids=resource_ids,
        patient_ids=patient_ids,
    )
    await scope.session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.tenant_id == scope.tenant_id, IdempotencyRecord.id == record_id)
        .values(
            status_code=status_code,
            response_body=scope.keyring.encrypt(
                table=_TABLE, column=binding, row_id=record_id, plaintext=encoded
            ),
            resource_type=resource_type,
            resource_ids=resource_ids,
            patient_ids=patient_ids,
        )
    )
    return _response(status_code, encoded, replayed=False, media_type=media_type)


def _binding(
    *,
    principal: str,
    key: str,
    route: str,
    fingerprint: bytes,
    status_code: int,
    resource_type: str | None,
    resource_ids: Sequence[uuid.UUID],
    patient_ids: Sequence[uuid.UUID],
) -> str:
    """What the stored response is encrypted to (its associated data, beside tenant, table and row id).

    Every clear column that decides who gets the response back, and what its replay records in the audit
    trail, is bound: a leaked database credential that re-keys another caller's record to itself (or edits
    the status or the patient ids) makes the ciphertext fail to open instead of replaying it.
    """
    facts = [
        principal,
        key,
        route,
        fingerprint.hex(),
        status_code,
        resource_type or "",
        sorted(str(i) for i in resource_ids),
        sorted(str(i) for i in patient_ids),
    ]
    return "response_body#" + hashlib.sha256(msgspec.json.encode(facts)).hexdigest()


def _ids_of(payload: Any) -> list[uuid.UUID]:
    row_id = getattr(payload, "id", None)
    return [row_id] if isinstance(row_id, uuid.UUID) else []


def _patients_of(resource_type: str, payload: Any) -> list[uuid.UUID]:
    if resource_type == "patient":
        return [payload.id]
    patient_id = getattr(payload, "patient_id", None)
    return [patient_id] if isinstance(patient_id, uuid.UUID) else []


def _response(
    status_code: int, body: bytes, *, replayed: bool, media_type: str = "application/json"
) -> Response[bytes]:
    headers = {REPLAYED_HEADER: "true"} if replayed else {}
    return Response(content=body, status_code=status_code, media_type=media_type, headers=headers)


async def purge_expired(session: AsyncSession, *, older_than: timedelta) -> int:
    """Forget stored responses older than ``older_than`` in the session's tenants; returns how many.

    Clients retry within minutes; a day or more of memory covers every sane retry policy, and the stored
    bodies (encrypted PHI) should not outlive their use.
    """
    cutoff = datetime.now(UTC) - older_than
    result = await session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.tenant_id == any_(func.rcm.current_tenant_ids()),
            IdempotencyRecord.created_at < cutoff,
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
