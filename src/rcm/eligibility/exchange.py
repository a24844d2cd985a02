"""What the eligibility check and the claim status inquiry share: the patient as the X12 member (decrypted
here, audited by the caller), the practice's envelope to a payer, and one real-time question to the payer's
connector with a deadline, both files kept, its failures turned into PHI-free 502/503 answers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import ClassVar, NamedTuple

import msgspec

from rcm.blobs.store import BlobStore
from rcm.claims.repository import ClaimRepository
from rcm.interchanges import service as files
from rcm.interchanges.models import Direction, X12File
from rcm.kit.errors import RCMError, ServiceUnavailable
from rcm.kit.secrets import SecretResolver
from rcm.patients.models import Coverage, Patient
from rcm.patients.service import coverage_view, patient_view
from rcm.payers.breaker import Breaker, CircuitOpen, breaker_key, guarded
from rcm.payers.connector import Connector, PermanentConnectorError, TransientConnectorError
from rcm.payers.models import Payer, PayerEnrollment
from rcm.payers.registry import build_config, open_connector
from rcm.tenancy.scope import TenantScope
from rcm.x12.eligibility import Member
from rcm.x12.model import Envelope, PersonName, Provider

_SEX = {"female": "F", "male": "M"}  # DMG03; other and unknown are sent as U


class BadGateway(RCMError):
    """The payer's connector refused the call (credentials, endpoint, a 4xx): retrying will not help."""

    status_code = 502
    title: ClassVar[str] = "Bad gateway"


def members(scope: TenantScope, patient: Patient, coverage: Coverage) -> tuple[Member, Member | None]:
    """The 270/276 subscriber (2100C) and, when the coverage's relationship is not self, the patient as the
    dependent (2100D): X279 and X212 put the coverage's member id on the subscriber and send the dependent by
    name, birth date and sex, as the 837P's 2010BA/2010CA do (``rcm.claims.parties``). A dependent coverage
    recorded without its subscriber's demographics (refused at intake since they became required) falls back
    to the patient as the subscriber. The caller audits the read."""
    view = patient_view(scope.keyring, patient)
    opened = coverage_view(scope.keyring, coverage)
    patient_member = Member(
        name=PersonName(last=view.family_name, first=view.given_name or None),
        birth_date=view.birth_date,
        sex=_SEX.get(view.sex or "", "U"),
    )
    insured = opened.subscriber
    if opened.relationship == "self" or insured is None:
        return msgspec.structs.replace(patient_member, member_id=opened.member_id or None), None
    subscriber = Member(
        name=PersonName(last=insured.family_name, first=insured.given_name, middle=insured.middle_name),
        member_id=opened.member_id or None,
        birth_date=insured.birth_date,
        sex=_SEX.get(insured.sex or "", "U"),
    )
    return subscriber, patient_member


def billing_provider(scope: TenantScope) -> Provider:
    provider = scope.manifest.billing_provider
    return Provider(npi=provider.npi, last=provider.name, organization=True)


async def envelope(scope: TenantScope, enrollment: PayerEnrollment, *, now: datetime) -> Envelope:
    """The practice's envelope to the payer, its ISA13 allocated from the sender's ledger (never reused)."""
    number = await scope.repo(ClaimRepository).allocate_control_number(enrollment.submitter_id)
    return Envelope(
        sender_id=enrollment.submitter_id,
        receiver_id=enrollment.receiver_id,
        interchange_control_number=number,
        group_control_number=number,
        created=now,
    )


class Exchanged(NamedTuple):
    sent: X12File  # what we asked (270, 276), kept encrypted
    answer: bytes
    received: X12File  # what the payer answered (271, 277, 999), kept encrypted


class PayerLine(NamedTuple):
    """Where a real-time question goes and how long it may take: the payer's service (connector and
    endpoint from the directory), the practice's enrollment (envelope ids, credentials reference), and the
    process's secrets and circuit breaker (the one submissions use)."""

    payer: Payer
    enrollment: PayerEnrollment
    connector: str
    endpoint: str
    secrets: SecretResolver
    deadline_seconds: float
    breaker: Breaker


async def call(
    x12: bytes, question: Callable[[Connector, bytes], Awaitable[bytes]], line: PayerLine
) -> bytes:
    """Ask the payer ``x12`` on ``line`` under its deadline and circuit breaker (a payer that is down is not
    asked again until its cool-down is over). No database here: callers hold no transaction across it when
    they can. A transient failure, the deadline or an open circuit is a 503 and a permanent one a 502; the
    message names the payer and the kind of failure only (a connector's reason may quote what the far side
    said, so it is not passed on)."""
    payer, enrollment = line.payer, line.enrollment
    try:
        opened = open_connector(
            build_config(
                connector=line.connector,
                endpoint=line.endpoint,
                submitter_id=enrollment.submitter_id,
                receiver_id=enrollment.receiver_id,
                credentials_reference=enrollment.credentials_reference,
                resolver=line.secrets,
                timeout_seconds=line.deadline_seconds,
            )
        )
    except PermanentConnectorError:
        raise BadGateway(f"The connector of payer {payer.id} is not configured correctly.") from None
    try:
        async with guarded(line.breaker, breaker_key(line.connector, line.endpoint)):
            return await _within(line.deadline_seconds, question(opened, x12), line.connector)
    except CircuitOpen:
        raise ServiceUnavailable(
            f"Payer {payer.id} is not answering at the moment; try again later."
        ) from None
    except TransientConnectorError:
        raise ServiceUnavailable(f"Payer {payer.id} did not answer; try again later.") from None
    except PermanentConnectorError:
        raise BadGateway(f"Payer {payer.id} refused the connection.") from None
    finally:
        await opened.aclose()


async def ask(
    scope: TenantScope,
    store: BlobStore,
    x12: bytes,
    question: Callable[[Connector, bytes], Awaitable[bytes]],
    line: PayerLine,
    *,
    patient_ids: Sequence[uuid.UUID],
) -> Exchanged:
    """Keep ``x12``, ``call`` the payer, keep the answer, in the caller's transaction (a real-time question a
    person waits for). On failure that transaction rolls back with the 502/503: nothing is recorded of an
    unanswered question (its kept blob is swept as an orphan)."""
    connector = line.connector
    sent, _ = await files.keep(
        scope, store, x12, direction=Direction.OUTBOUND, connector=connector, patient_ids=patient_ids
    )
    answer = await call(x12, question, line)
    received, _ = await files.keep(
        scope, store, answer, direction=Direction.INBOUND, connector=connector, patient_ids=patient_ids
    )
    return Exchanged(sent, answer, received)


async def _within(seconds: float, answer: Awaitable[bytes], connector: str) -> bytes:
    """The answer, or a transient failure at the deadline (so the breaker counts a payer that hangs)."""
    try:
        async with asyncio.timeout(seconds):
            return await answer
    except TimeoutError:
        raise TransientConnectorError(connector, "ask", "no answer before the deadline") from None
