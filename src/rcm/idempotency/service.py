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
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Annotated, Any

import msgspec
from litestar import Request, Response
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter
from sqlalchemy.ext.asyncio import AsyncSession

from rcm.audit.events import Action
from rcm.crypto.keyring import DecryptionError
from rcm.idempotency.repository import IdempotencyRepository, StoreParams, purge_expired_records
from rcm.kit.errors import Conflict, FieldError, IdempotencyMismatch, InvalidInput, problem_responses
from rcm.tenancy.scope import TenantScope

# The record ids and patient ids a response payload holds, for a payload that is not one record.
Touched = Callable[[Any], tuple[list[uuid.UUID], list[uuid.UUID]]]

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"  # "true" on a stored first response answering a retry
# The header as a handler parameter: optional in the signature so a missing key is our own 422 naming it.
IdemKey = Annotated[
    str | None,
    HeaderParameter(name=HEADER, description="Required on writes: a retry returns the first response"),
]
logger = logging.getLogger(__name__)
_TABLE = "idempotency_record"
# The reservation of the request in flight, on its session: lets a write that knows the response before it
# runs store it in its own statement (``carry_response``).
_RESERVATION = "rcm.idempotency.reservation"


@dataclass(slots=True)
class _Reservation:
    record_id: uuid.UUID
    who: str
    key: str
    route: str
    fingerprint: bytes
    resource_type: str
    carried: bytes | None = None  # the encoded response a write stored along with its rows


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
    touched: Touched | None = None,
) -> Response[bytes]:
    """Answer a create once per (caller, key): the first time by ``produce``, later from the record.

    The fingerprint covers the concrete path (tenant, parent ids) and the body, so reusing a key for another
    resource is the same 422 as reusing it with another body. A route that has already hashed its (large)
    body passes that hash as ``body_fingerprint`` instead of having the body read into memory and decoded
    again here: an upload the SHA-256 of what it stored, the FHIR base the hash of the bundle's canonical
    form. ``touched`` names the records and patients a
    payload holds when it is not one record (a FHIR transaction-response), so a replay is audited as a read
    of them.
    """
    key = check_key(key)
    route = f"{request.method} {request.url.path}"
    if body_fingerprint is not None:
        fingerprint = hashlib.sha256(route.encode() + b"\x00" + body_fingerprint).digest()
    else:
        fingerprint = request_fingerprint(route, await request.body())
    who = principal_key(scope)
    record_id = uuid.uuid4()
    records = scope.repo(IdempotencyRepository)
    reserved = await records.reserve(
        record_id=record_id, principal=who, key=key, route=route, fingerprint=fingerprint
    )
    if not reserved:
        existing = await records.existing(who, key)
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

    reservation = _Reservation(record_id, who, key, route, fingerprint, resource_type)
    info = scope.session.sync_session.info
    info[_RESERVATION] = reservation
    try:
        status_code, payload = await produce()
    finally:
        info.pop(_RESERVATION, None)
    encoded = msgspec.json.encode(payload)
    if reservation.carried is None or reservation.carried != _carried_form(status_code, encoded):
        # Not stored along with the write (or the write stored another answer than the one given): here.
        await records.store(
            record_id, _store_params(scope, reservation, status_code, payload, encoded, touched=touched)
        )
    return _response(status_code, encoded, replayed=False, media_type=media_type)


# ``STORE_SQL``'s parameters storing nothing (``idem_id`` NULL): a write outside an idempotent request, or
# one answering many requests' worth of rows (a bulk batch).
NO_RESPONSE: Mapping[str, Any] = MappingProxyType(
    dict.fromkeys(("idem_status", "idem_body", "idem_resource_type", "idem_id"), None)
    | {"idem_resource_ids": [], "idem_patient_ids": []}
)


def carry_response(scope: TenantScope, status_code: int, payload: Any) -> Mapping[str, Any]:
    """Parameters of ``STORE_SQL`` storing ``payload`` as the answer to the request in flight, for a write
    that knows its response before it runs and sends the storing in its own statement (one round trip
    fewer). Outside an idempotent request, ``idem_id`` is NULL and the statement stores nothing.

    ``run_idempotent`` still stores the response itself unless the one it is given is the one carried.
    """
    reservation: _Reservation | None = scope.session.sync_session.info.get(_RESERVATION)
    if reservation is None:
        return NO_RESPONSE
    encoded = msgspec.json.encode(payload)
    reservation.carried = _carried_form(status_code, encoded)
    params = _store_params(scope, reservation, status_code, payload, encoded)
    return params.as_params(reservation.record_id)


def _carried_form(status_code: int, encoded: bytes) -> bytes:
    return str(status_code).encode() + b" " + encoded


def _store_params(
    scope: TenantScope,
    reservation: _Reservation,
    status_code: int,
    payload: Any,
    encoded: bytes,
    *,
    touched: Touched | None = None,
) -> StoreParams:
    """The stored response: encrypted, bound to every clear column that decides its replay."""
    resource_type = reservation.resource_type
    if touched is not None:
        resource_ids, patient_ids = touched(payload)
    else:
        resource_ids, patient_ids = _ids_of(payload), _patients_of(resource_type, payload)
    binding = _binding(
        principal=reservation.who,
        key=reservation.key,
        route=reservation.route,
        fingerprint=reservation.fingerprint,
        status_code=status_code,
        resource_type=resource_type,
        resource_ids=resource_ids,
        patient_ids=patient_ids,
    )
    body = scope.keyring.encrypt(
        table=_TABLE, column=binding, row_id=reservation.record_id, plaintext=encoded
    )
    return StoreParams(
        status_code=status_code,
        body=body,
        resource_type=resource_type,
        resource_ids=resource_ids,
        patient_ids=patient_ids,
    )


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
    return await purge_expired_records(session, datetime.now(UTC) - older_than)
