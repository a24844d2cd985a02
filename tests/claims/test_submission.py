"""Submitting batches through the sandbox payer, on the real database: sent once however many messages ask;
a transient failure retried after a backoff; a permanent one dead-lettered to the billing queue and replayed;
an open circuit makes no call and spends no attempt; a batch left ``sending`` by a crash is probed, not
re-sent; the relay asks again for every batch still due."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.blobs.store import BlobStore
from rcm.claims.jobs import relay
from rcm.claims.outbox_repository import OutboxRepository
from rcm.claims.rendering import render_batch
from rcm.claims.submission import Outcome, file_name, submit_batch
from rcm.config import Settings
from rcm.crypto.keyring import KeyStore
from rcm.crypto.provider import key_provider
from rcm.identity.principal import Role
from rcm.kit.secrets import SecretResolver
from rcm.kit.tenant import TenantId
from rcm.payers.breaker import breaker_key
from rcm.payers.connector import Submission
from rcm.payers.registry import build_config, open_connector
from rcm.tenancy.models import Tenant
from rcm.worker import current_broker
from tests.claims.conftest import Claims, practice_scope
from tests.claims.submitting import (
    Clock,
    batch_row,
    build,
    claim_states,
    intake,
    practice,
    received,
    sandbox_env,
    set_faults,
    submitter,
)
from tests.coding.conftest import MakeStaff
from tests.support import Api

__all__ = ["intake", "practice", "sandbox_env"]  # fixtures, imported so pytest finds them here


async def test_a_batch_is_sent_once_however_many_messages_ask(
    *,
    sandbox_env: Path,
    intake: Api,
    practice: Tenant,
    claims: Claims,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    for _ in range(2):
        await claims.new(intake, practice)
    (batch,) = await build(sessions, settings, practice)
    clock = Clock()
    deps = submitter(sessions, settings, clock=clock)
    tenant = TenantId(practice.id)

    assert await submit_batch(deps, tenant, batch.id) is Outcome.SENT
    # The same message delivered again, and again later: nothing is sent twice.
    assert await submit_batch(deps, tenant, batch.id) is Outcome.DONE
    clock.advance(3600)
    assert await submit_batch(deps, tenant, batch.id) is Outcome.DONE

    assert received(settings, file_name(batch)) == 1
    row = await batch_row(owner_engine, batch.id)
    assert (row.status, row.attempts, row.last_error) == ("sent", 1, None)
    assert row.receipt_reference.startswith("SBX")
    assert await claim_states(owner_engine, batch.id) == ["submitted", "submitted"]


async def test_a_transient_failure_is_retried_after_a_backoff(
    *,
    sandbox_env: Path,
    intake: Api,
    practice: Tenant,
    claims: Claims,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    await claims.new(intake, practice)
    (batch,) = await build(sessions, settings, practice)
    clock = Clock()
    deps = submitter(sessions, settings, clock=clock)
    set_faults(settings, transient=1)

    assert await submit_batch(deps, TenantId(practice.id), batch.id) is Outcome.RETRY
    row = await batch_row(owner_engine, batch.id)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error == "TransientConnectorError: sandbox submit: the sandbox payer is down (test fault)"
    # Backoff of the first retry: 10 s base, equal jitter: between 5 and 10 s from the failure.
    delay = (row.next_attempt_at - clock.now).total_seconds()
    assert 5.0 <= delay <= 10.0
    assert await submit_batch(deps, TenantId(practice.id), batch.id) is Outcome.NOT_DUE

    clock.advance(delay)
    assert await submit_batch(deps, TenantId(practice.id), batch.id) is Outcome.SENT
    assert received(settings, file_name(batch)) == 1
    assert (await batch_row(owner_engine, batch.id)).attempts == 2


async def test_retries_run_out_into_a_dead_letter(
    *,
    sandbox_env: Path,
    intake: Api,
    practice: Tenant,
    claims: Claims,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    await claims.new(intake, practice)
    (batch,) = await build(sessions, settings, practice)
    clock = Clock()
    deps = submitter(sessions, settings, clock=clock, failures=100)
    set_faults(settings, transient=10)
    outcomes = []
    for _ in range(3):  # the policy's max_attempts
        outcomes.append(await submit_batch(deps, TenantId(practice.id), batch.id))
        clock.advance(3600)
    assert outcomes == [Outcome.RETRY, Outcome.RETRY, Outcome.DEAD]
    row = await batch_row(owner_engine, batch.id)
    assert (row.status, row.attempts) == ("dead", 3)
    assert received(settings, file_name(batch)) == 0


async def test_a_permanent_failure_goes_to_a_biller_who_replays_it(
    *,
    sandbox_env: Path,
    intake: Api,
    practice: Tenant,
    other_practice: Tenant,
    claims: Claims,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
    make_staff: MakeStaff,
) -> None:
    await claims.new(intake, practice)
    (batch,) = await build(sessions, settings, practice)
    clock = Clock()
    deps = submitter(sessions, settings, clock=clock)
    set_faults(settings, permanent=1)

    assert await submit_batch(deps, TenantId(practice.id), batch.id) is Outcome.DEAD
    row = await batch_row(owner_engine, batch.id)
    assert row.status == "dead"
    assert row.last_error.startswith("PermanentConnectorError: sandbox submit:")

    # A biller of the practice sees it in the billing queue; one of another practice does not.
    outsider = await make_staff(Role.BILLER, other_practice)
    assert (await outsider.post("/billing/next")).status_code == 204
    assert (await outsider.post(f"/billing/submission-batches/{batch.id}/replay")).status_code == 404
    biller = await make_staff(Role.BILLER, practice)
    task = (await biller.post("/billing/next")).json()
    assert (task["item"]["reason"], task["item"]["subject_type"]) == ("dead_letter", "submission_batch")
    assert task["item"]["subject_id"] == str(batch.id)

    replayed = await biller.post(f"/billing/submission-batches/{batch.id}/replay")
    assert replayed.status_code == 200, replayed.text
    body = replayed.json()
    assert (body["status"], body["attempts"]) == ("pending", 0)
    assert body["last_error"].startswith("PermanentConnectorError")
    # Its dead-letter item is done; replaying again is refused, naming the status.
    assert (await biller.post("/billing/next")).status_code == 204
    again = await biller.post(f"/billing/submission-batches/{batch.id}/replay")
    assert again.status_code == 409
    assert again.json()["errors"] == [{"pointer": "/status", "detail": "is pending"}]

    clock.advance(60)  # the replay made it due at once (wall clock), past this test's clock
    assert await submit_batch(deps, TenantId(practice.id), batch.id) is Outcome.SENT
    assert received(settings, file_name(batch)) == 1
    assert await claim_states(owner_engine, batch.id) == ["submitted"]


async def test_an_open_circuit_makes_no_call_and_spends_no_attempt(
    *,
    sandbox_env: Path,
    intake: Api,
    practice: Tenant,
    claims: Claims,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    await claims.new(intake, practice)
    (batch,) = await build(sessions, settings, practice)
    clock = Clock()
    deps = submitter(sessions, settings, clock=clock, failures=1)
    await deps.breaker.record_failure(breaker_key("sandbox", "sandbox://claims"))

    assert await submit_batch(deps, TenantId(practice.id), batch.id) is Outcome.CIRCUIT_OPEN
    row = await batch_row(owner_engine, batch.id)
    assert (row.status, row.attempts) == ("pending", 0)
    assert row.last_error.startswith("CircuitOpen:")
    assert 50 <= (row.next_attempt_at - clock.now).total_seconds() <= 60
    assert received(settings, file_name(batch)) == 0

    await deps.breaker.record_success(breaker_key("sandbox", "sandbox://claims"))
    clock.advance(60)
    assert await submit_batch(deps, TenantId(practice.id), batch.id) is Outcome.SENT
    assert received(settings, file_name(batch)) == 1


async def test_a_batch_left_sending_is_probed_not_sent_again(
    *,
    sandbox_env: Path,
    intake: Api,
    practice: Tenant,
    claims: Claims,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    """A worker died after the connector's call: the payer has the file, the batch still says sending."""
    await claims.new(intake, practice)
    await claims.new(intake, practice, payer_id="DEMO-BCX")
    delivered, lost = await build(sessions, settings, practice)
    clock = Clock()
    deps = submitter(sessions, settings, clock=clock)
    tenant = TenantId(practice.id)
    async with practice_scope(sessions, settings, practice) as scope:
        repo = scope.repo(OutboxRepository)
        for batch in (delivered, lost):
            # As the handler does: the 837 is kept before the batch is marked sending.
            await render_batch(scope, BlobStore.from_settings(settings), batch.id)
            assert await repo.start_sending(batch.id, lease_until=clock.now + timedelta(seconds=30))
    # The dead worker's call reached the payer for one of them.
    payer = open_connector(
        build_config(
            connector="sandbox",
            endpoint="sandbox:claims",
            submitter_id="SUBMIT01",
            receiver_id="R",
            credentials_reference=None,
            resolver=SecretResolver(),
        )
    )
    icn = f"{delivered.interchange_control_number:09d}"
    await payer.submit(Submission(file_name=file_name(delivered), interchange_control_number=icn, x12=b"ISA"))
    assert await payer.delivered(file_name(delivered)) is True
    assert await payer.delivered(file_name(lost)) is False

    # Within the lease nobody touches them (the call may still be in flight); after it, the probe decides.
    assert await submit_batch(deps, tenant, lost.id) is Outcome.NOT_DUE
    clock.advance(31)
    assert await submit_batch(deps, tenant, delivered.id) is Outcome.SENT
    assert await submit_batch(deps, tenant, lost.id) is Outcome.SENT
    assert received(settings, file_name(delivered)) == 1
    assert received(settings, file_name(lost)) == 1
    assert (await batch_row(owner_engine, delivered.id)).attempts == 1
    assert await claim_states(owner_engine, delivered.id) == ["submitted"]
    assert (await batch_row(owner_engine, lost.id)).attempts == 2


async def test_the_relay_asks_again_for_every_batch_still_due(
    *,
    sandbox_env: Path,
    intake: Api,
    practice: Tenant,
    claims: Claims,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    await claims.new(intake, practice)
    (batch,) = await build(sessions, settings, practice)
    broker = current_broker()
    broker.declare_queue("claims")
    broker.flush("claims")
    assert await relay(sessions, KeyStore(key_provider(settings))) >= 1
    asked = [
        msgspec.json.decode(m)["kwargs"]
        for m in list(broker.queues["claims"].queue)  # type: ignore[attr-defined]
    ]
    assert {"tenant_id": str(practice.id), "batch_id": str(batch.id)} in asked
    broker.flush("claims")
