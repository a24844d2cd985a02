"""Submission batches: ready claims grouped per practice and payer (never across practices), each under
control numbers allocated per sender id, unique under concurrency, recorded on the batch; sending moves the
batch's claims to submitted; the 837 writer's input carries the claims and their lines."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.audit.events import RequestInfo
from rcm.claims.batches import batch_document, build_batches, mark_sent
from rcm.claims.repository import ClaimRepository
from rcm.claims.states import Cause, ClaimState
from rcm.config import Settings
from rcm.crypto.keyring import KeyStore
from rcm.crypto.provider import key_provider
from rcm.identity.principal import Role
from rcm.identity.testing import user_principal
from rcm.kit.tenant import TenantId
from rcm.tenancy.models import Tenant
from rcm.tenancy.scope import SystemScope
from rcm.tenancy.staff import system_scope
from tests.claims.conftest import Claims, practice_scope, rows
from tests.coding.conftest import MakeStaff
from tests.support import Api


@asynccontextmanager
async def operator_scope(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, *practices: Tenant, actor: Any = None
) -> AsyncIterator[SystemScope]:
    """An operator job's unit of work over ``practices`` (committed on success)."""
    async with system_scope(
        sessions,
        KeyStore(key_provider(settings)),
        job="claims.test",
        tenant_ids=tuple(TenantId(p.id) for p in practices),
        actor=actor or user_principal(Role.ADMIN),
        request=RequestInfo(request_id="claims-test", trace_id=""),
    ) as scope:
        yield scope


async def test_batches_group_per_practice_and_payer_with_unique_control_numbers(
    *,
    intake: Api,
    other_intake: Api,
    practice: Tenant,
    other_practice: Tenant,
    claims: Claims,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    a_mcr = [await claims.new(intake, practice) for _ in range(2)]
    a_bcx = await claims.new(intake, practice, payer_id="DEMO-BCX")
    b_mcr = await claims.new(other_intake, other_practice)
    rejected = await claims.new(intake, practice)
    await claims.walk(practice, rejected, ClaimState.SUBMITTED, ClaimState.REJECTED)

    # One operator job over both practices (the same sender id, SUBMIT01, serves both for DEMO-MCR).
    async with operator_scope(sessions, settings, practice, other_practice) as scope:
        batches = await build_batches(scope)

    assert len(batches) == 3
    members = {
        b.id: {
            (row[0], row[1])
            for row in await rows(
                owner_engine, "SELECT tenant_id, id FROM rcm.claim WHERE submission_batch_id = :b", b=b.id
            )
        }
        for b in batches
    }
    for batch in batches:
        # Never across practices: every claim of a batch is of the batch's practice.
        assert {tenant for tenant, _ in members[batch.id]} == {batch.tenant_id}
        assert batch.claim_count == len(members[batch.id])
    by_key = {(b.tenant_id, b.payer_id): b for b in batches}
    assert {c for _, c in members[by_key[(practice.id, "DEMO-MCR")].id]} == set(a_mcr)
    assert {c for _, c in members[by_key[(practice.id, "DEMO-BCX")].id]} == {a_bcx}
    assert {c for _, c in members[by_key[(other_practice.id, "DEMO-MCR")].id]} == {b_mcr}
    bcx = by_key[(practice.id, "DEMO-BCX")]
    # The enrollment decides the envelope: the default submitter is the billing provider's NPI.
    assert (bcx.sender_id, bcx.receiver_id, bcx.connector) == ("1003000126", "BCX-RECEIVER", "sandbox")
    mcr_numbers = [
        by_key[(t, "DEMO-MCR")].interchange_control_number for t in (practice.id, other_practice.id)
    ]
    assert len(set(mcr_numbers)) == 2
    for batch in batches:
        assert batch.group_control_number == batch.interchange_control_number
        assert batch.transaction_set_control_number == "0001"
    # The rejected claim is not ready: left out.
    assert await rows(
        owner_engine, "SELECT submission_batch_id FROM rcm.claim WHERE id = :c", c=rejected
    ) == [(None,)]

    # A second run finds nothing left to batch.
    async with practice_scope(sessions, settings, practice) as scope:
        assert await build_batches(scope) == []
        document = await batch_document(scope, by_key[(practice.id, "DEMO-MCR")].id)
    assert [c.id for c, _ in document.claims] == a_mcr
    assert [[line.procedure_code for line in lines] for _, lines in document.claims] == [
        ["99213", "G2211"]
    ] * 2
    assert document.enrollment.submitter_id == "SUBMIT01"
    assert document.enrollment.credentials_reference == "env:DEMO_MCR_CREDENTIALS"
    assert document.payer.claim_filing_indicator.value == "MB"

    async with practice_scope(sessions, settings, practice) as scope:
        sent = await mark_sent(scope, by_key[(practice.id, "DEMO-MCR")].id)
    assert sent.status.value == "sent"
    states = await rows(owner_engine, "SELECT state FROM rcm.claim WHERE id = ANY(:c)", c=a_mcr)
    assert states == [("submitted",), ("submitted",)]
    events = await rows(
        owner_engine,
        "SELECT cause FROM rcm.claim_event WHERE claim_id = :c AND to_state = 'submitted'",
        c=a_mcr[0],
    )
    assert events == [("submission",)]


async def test_control_numbers_are_unique_under_concurrency(
    practice: Tenant,
    other_practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    sender = f"S{uuid.uuid4().hex[:12].upper()}"

    async def allocate(tenant: Tenant) -> list[int]:
        numbers = []
        for _ in range(5):
            async with practice_scope(sessions, settings, tenant) as scope:
                numbers.append(await scope.repo(ClaimRepository).allocate_control_number(sender))
        return numbers

    results = await asyncio.gather(
        *(allocate(t) for t in (practice, other_practice, practice, other_practice))
    )
    numbers = [n for batch in results for n in batch]
    assert len(numbers) == 20
    assert sorted(numbers) == list(range(1, 21))  # never twice, never skipped
    recorded = await rows(
        owner_engine,
        "SELECT control_number FROM rcm.x12_control_number WHERE sender_id = :s ORDER BY 1",
        s=sender,
    )
    assert [r[0] for r in recorded] == list(range(1, 21))


async def test_a_batched_claim_cannot_be_closed_and_only_ready_claims_go_out(
    *,
    intake: Api,
    practice: Tenant,
    claims: Claims,
    make_staff: MakeStaff,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    """A claim in a pending batch may already be on its way: close (like void) waits for the payer's answer,
    and a claim that left ``ready`` after batching is never written into the batch's 837."""
    kept, left = await claims.new(intake, practice), await claims.new(intake, practice)
    async with practice_scope(sessions, settings, practice) as scope:
        [batch] = await build_batches(scope)
    biller = await make_staff(Role.BILLER, practice)
    refused = await biller.post(f"/billing/claims/{kept}/close", {"reason": "patient paid in full"})
    assert refused.status_code == 409
    assert refused.json()["errors"] == [{"pointer": "/submission_batch_id", "detail": "is set"}]
    # However a claim leaves ready after batching (here as an operator fix would move it), it stays out.
    async with practice_scope(sessions, settings, practice) as scope:
        await scope.repo(ClaimRepository).transition(
            left, expected=ClaimState.READY, to=ClaimState.VOIDED, cause=Cause.BILLER, actor="test"
        )
    async with practice_scope(sessions, settings, practice) as scope:
        document = await batch_document(scope, batch.id)
    assert [c.id for c, _ in document.claims] == [kept]
