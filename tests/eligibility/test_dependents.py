"""A dependent's coverage asks the payer about the subscriber (2100C: the coverage's member id and the
subscriber's demographics) and the patient as the dependent (2100D), in the 270 and the 276 alike; what was
sent and what the sandbox payer answered, read back from the kept files, carry both members."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.blobs.store import BlobStore
from rcm.claims.states import ClaimState
from rcm.claims.status_inquiry import ask, prepare, record
from rcm.config import Settings
from rcm.eligibility.models import InquiryOutcome
from rcm.interchanges import service as files
from rcm.interchanges.repository import X12FileRepository
from rcm.kit.secrets import SecretResolver
from rcm.payers.breaker import MemoryBreaker
from rcm.tenancy.models import Tenant
from rcm.x12 import claim_status as x277
from rcm.x12 import transactions
from rcm.x12.benefits import read_271
from rcm.x12.claim_status_request import read_276
from rcm.x12.eligibility import Member, read_270
from rcm.x12.envelope import Transaction
from sandbox_payer.store import ClaimRecord, Store
from tests.claims.conftest import Claims, practice_scope, rows
from tests.encounters.test_parties import SUBSCRIBER, dependent_payload
from tests.support import Api

_T = TypeVar("_T")


async def _kept(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, practice: Tenant, file_id: str
) -> bytes:
    async with practice_scope(sessions, settings, practice) as scope:
        row = await scope.repo(X12FileRepository).get(uuid.UUID(file_id))
        assert row is not None
        return await files.read(scope, BlobStore.from_settings(settings), row)


def _read(data: bytes, reader: Callable[[Transaction], _T]) -> _T:
    """The first transaction set of ``data`` read by ``reader`` (transaction sets stream: read in place)."""
    for transaction in transactions(data):
        return reader(transaction)
    raise AssertionError("no transaction set")


def _assert_members(
    subscriber: Member, dependent: Member | None, member_id: str, patient: dict[str, Any]
) -> None:
    assert subscriber.member_id == member_id
    assert subscriber.name.last == SUBSCRIBER["family_name"]
    assert dependent is not None
    assert dependent.member_id is None
    assert dependent.name.last == patient["family_name"]
    assert dependent.name.first == patient["given_name"]


async def test_a_dependents_270_and_271_carry_subscriber_and_patient(
    *,
    intake: Api,
    claims: Claims,
    practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    payload = dependent_payload()
    encounter = await claims.encounter(intake, **{k: v for k, v in payload.items() if k != "external_id"})
    coverage = (await intake.get(f"/patients/{encounter['patient_id']}/coverages")).json()[0]
    assert coverage["relationship"] == "child"
    created = await intake.post(
        f"/patients/{encounter['patient_id']}/coverages/{coverage['id']}/eligibility-checks", {}
    )
    assert created.status_code == 201, created.text
    check = created.json()
    assert check["status"] == "active"

    inquiry = _read(await _kept(sessions, settings, practice, check["request_file_id"]), read_270).inquiries[
        0
    ]
    member_id = payload["coverage"]["member_id"]
    _assert_members(inquiry.subscriber, inquiry.dependent, member_id, payload["patient"])
    assert inquiry.subscriber.birth_date == date.fromisoformat(SUBSCRIBER["birth_date"])
    assert inquiry.subscriber.sex == "M"
    assert inquiry.subscriber.name.middle == SUBSCRIBER["middle_name"]
    assert inquiry.dependent is not None
    assert inquiry.dependent.birth_date == date.fromisoformat(payload["patient"]["birth_date"])
    assert inquiry.dependent.sex == "F"
    assert inquiry.trace_number == uuid.UUID(check["id"]).hex

    answer = _read(await _kept(sessions, settings, practice, check["response_file_id"]), read_271).answers[0]
    assert answer.trace_number == inquiry.trace_number
    _assert_members(answer.subscriber, answer.dependent, member_id, payload["patient"])


@pytest.fixture
def claims_sandbox(tmp_path: Path) -> Store:
    """The sandbox payer's claim records (claims and status share ``sandbox:claims``)."""
    return Store(tmp_path / "sandbox-payer" / "claims")


async def test_a_dependents_276_and_277_carry_subscriber_and_patient(
    *,
    intake: Api,
    claims: Claims,
    practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
    claims_sandbox: Store,
) -> None:
    payload = dependent_payload()
    claim_id = await claims.new(intake, practice, **payload)
    await claims.walk(practice, claim_id, ClaimState.SUBMITTED)
    async with owner_engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE rcm.claim SET state_changed_at = now() - interval '40 days'"
                " WHERE tenant_id = :t AND id = :c"
            ),
            {"t": practice.id, "c": claim_id},
        )
    pcn = (
        await rows(owner_engine, "SELECT patient_control_number FROM rcm.claim WHERE id = :c", c=claim_id)
    )[0].patient_control_number
    claims_sandbox.save_claims(
        {
            "CCN-D": ClaimRecord(
                payer_claim_control_number="CCN-D",
                patient_control_number=pcn,
                provider_npi="1003000126",
                outcome="paid",
                charge=14150,
                paid=14150,
                due=0,
            )
        }
    )
    now = datetime.now(UTC)
    async with practice_scope(sessions, settings, practice) as scope:
        question = await prepare(scope, claim_id, now=now)
    assert question is not None
    answer = await ask(
        question,
        secrets=SecretResolver(None),
        deadline_seconds=10.0,
        breaker=MemoryBreaker(failures=5, cooldown_seconds=60.0),
    )
    async with practice_scope(sessions, settings, practice) as scope:
        outcome = await record(scope, question, answer, store=BlobStore.from_settings(settings), now=now)
    assert outcome is InquiryOutcome.FINALIZED
    asked = await rows(
        owner_engine,
        "SELECT request_file_id, response_file_id FROM rcm.claim_status_inquiry WHERE claim_id = :c",
        c=claim_id,
    )
    inquiry = _read(
        await _kept(sessions, settings, practice, str(asked[0].request_file_id)), read_276
    ).inquiries[0]
    member_id = payload["coverage"]["member_id"]
    _assert_members(inquiry.subscriber, inquiry.dependent, member_id, payload["patient"])
    assert inquiry.dependent is not None
    assert inquiry.dependent.birth_date == date.fromisoformat(payload["patient"]["birth_date"])
    assert inquiry.claims[0].patient_control_number == pcn

    response = _read(await _kept(sessions, settings, practice, str(asked[0].response_file_id)), x277.read)
    subscribers = [
        subscriber
        for source in response.sources
        for receiver in source.receivers
        for provider in receiver.providers
        for subscriber in provider.subscribers
    ]
    assert [s.subscriber.identifier for s in subscribers] == [member_id]
    assert subscribers[0].subscriber.last == SUBSCRIBER["family_name"]
    assert subscribers[0].claims == ()
    patient = subscribers[0].dependents[0].patient
    assert patient.last == payload["patient"]["family_name"]
    found = subscribers[0].dependents[0].claims
    assert [c.tracking_number for c in found] == [inquiry.claims[0].trace_number]
    assert found[0].payer_claim_control_number == "CCN-D"
