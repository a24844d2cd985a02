"""Webhooks end to end: a practice subscribes, a claim or encounter changes, the dispatcher and the worker
post a signed body to a real HTTP receiver on loopback; failures back off and die; a replay delivers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.claims.service import move
from rcm.claims.states import Cause, ClaimState
from rcm.config import Settings
from rcm.crypto.tasks import job_keystore
from rcm.kit.tenant import TenantId
from rcm.tenancy.models import Tenant
from rcm.webhooks.delivery import RetryPolicy, deliver
from rcm.webhooks.tasks import deliver_one, dispatch_due
from rcm.worker import encode_payload_roundtrip
from tests.claims.conftest import Claims, practice_scope
from tests.support import Api, patient_payload
from tests.webhooks.conftest import DEAD, DELIVERED, PENDING, Receiver, make_due, run_due, subscribe

pytestmark = pytest.mark.usefixtures("jobs")


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What a receiver writes (the README's five lines), independent of our signing module."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['Webhook-Id']}.{headers['Webhook-Timestamp']}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, s) for s in headers["Webhook-Signature"].split())


async def count_deliveries(owner_engine: AsyncEngine, tenant_id: str) -> int:
    async with owner_engine.connect() as conn:
        found = await conn.execute(
            text("SELECT count(*) FROM rcm.webhook_delivery WHERE tenant_id = :t"),
            {"t": uuid.UUID(tenant_id)},
        )
        return int(found.scalar_one())


async def test_claim_changes_are_posted_signed_and_without_phi(
    *,
    intake: Api,
    practice: Tenant,
    claims: Claims,
    receiver: Receiver,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    subscription = await subscribe(intake, receiver.url)
    secret = subscription["secret"]
    assert secret.startswith("whsec_")
    sent_patient = patient_payload()
    member_id = f"M{uuid.uuid4().hex[:10]}"
    coverage = {"payer_id": "DEMO-MCR", "member_id": member_id, "relationship": "self"}
    encounter = await claims.encounter(intake, patient=sent_patient, coverage=coverage)
    claim_id = await claims.build(practice, encounter["id"])

    outcomes = await run_due(sessions, intake)
    assert outcomes
    assert set(outcomes) == {DELIVERED}
    bodies = receiver.bodies()
    claim_events = [b for b in bodies if b["type"] == "claim.status_changed"]
    assert {(b["data"]["from_state"], b["data"]["to_state"]) for b in claim_events} >= {(None, "created")}
    assert all(b["data"]["claim_id"] == str(claim_id) for b in claim_events)
    for received in receiver.received:
        assert verify(secret, received.headers, received.body)
        assert not verify(secret, {**received.headers, "Webhook-Id": "forged"}, received.body)
        assert received.headers["Webhook-Id"] == json.loads(received.body)["id"]
        assert abs(int(received.headers["Webhook-Timestamp"]) - datetime.now().timestamp()) < 120
        # No PHI: nothing of the patient, coverage or note the practice sent reaches the wire.
        raw = received.body.decode()
        for value in (
            sent_patient["family_name"],
            sent_patient["given_name"],
            sent_patient["mrn"],
            sent_patient["birth_date"],
            member_id,
            "DEMO NOTE",
            encounter["patient_id"],
        ):
            assert value not in raw
        assert set(json.loads(raw)) == {"id", "type", "timestamp", "data"}
        assert set(json.loads(raw)["data"]) <= {
            "claim_id",
            "encounter_id",
            "frequency",
            "from_state",
            "to_state",
            "cause",
            "status",
            "note",
        }

    # At least once, idempotent: the same message again posts nothing more.
    sent = len(receiver.received)
    assert await run_due(sessions, intake) == []
    listed = await intake.get("/webhooks/deliveries", {"delivery_status": "delivered"})
    assert listed.status_code == 200
    assert len(listed.json()["items"]) == sent


async def test_a_failing_receiver_gets_growing_backoff_then_dead_and_a_replay_delivers(
    *,
    intake: Api,
    practice: Tenant,
    claims: Claims,
    receiver: Receiver,
    sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
) -> None:
    subscription = await subscribe(intake, receiver.url, "claim.status_changed")
    claim_id = await claims.new(intake, practice)
    listed = (await intake.get("/webhooks/deliveries", {"delivery_status": "pending"})).json()["items"]
    assert len(listed) >= 1
    delivery_id = listed[0]["id"]
    receiver.statuses = [500, 503, 500, 500]
    policy = RetryPolicy(max_attempts=4, base_seconds=2.0)
    statuses = []
    for _ in range(4):
        await make_due(owner_engine, delivery_id)
        statuses.append(
            await deliver(
                sessions,
                job_keystore(),
                TenantId(practice.id),
                uuid.UUID(delivery_id),
                env="test",
                policy=policy,
            )
        )
    assert [s.value if s else None for s in statuses] == [PENDING, PENDING, PENDING, DEAD]
    detail = (await intake.get(f"/webhooks/deliveries/{delivery_id}")).json()
    attempts = detail["attempts"]
    assert [a["number"] for a in attempts] == [1, 2, 3, 4]
    assert [a["status_code"] for a in attempts] == [500, 503, 500, 500]
    assert all(a["error"] and a["error"].startswith("http_") for a in attempts)  # a class, never the body
    waits = [
        (datetime.fromisoformat(a["retry_at"]) - datetime.fromisoformat(a["at"])).total_seconds()
        for a in attempts[:3]
    ]
    assert waits[0] >= 2.0
    assert waits[0] < waits[1] < waits[2]
    assert attempts[3]["retry_at"] is None
    assert detail["delivery"]["status"] == DEAD
    assert detail["delivery"]["last_status_code"] == 500

    # Not due yet, and not pending: nothing happens until a replay re-arms it.
    assert (
        await deliver(sessions, job_keystore(), TenantId(practice.id), uuid.UUID(delivery_id), env="test")
        is None
    )
    replayed = await intake.post(f"/webhooks/deliveries/{delivery_id}/replay", {})
    assert replayed.status_code == 202, replayed.text
    assert replayed.json()["status"] == PENDING
    again = await intake.post(f"/webhooks/deliveries/{delivery_id}/replay", {})
    assert again.status_code == 409  # it is pending already
    # The replay queued its message itself (the dispatcher leaves it alone meanwhile): run it.
    assert str(uuid.UUID(delivery_id)) not in {
        str(d) for _, d in await dispatch_due(sessions, job_keystore())
    }
    message = deliver_one.message(tenant_id=intake.tenant_id, delivery_id=delivery_id)
    assert await deliver_one(**encode_payload_roundtrip(message)) == DELIVERED
    first = json.loads(receiver.received[0].body)["id"]
    assert json.loads(receiver.received[0].body)["data"]["claim_id"] == str(claim_id)
    same_event = [r for r in receiver.received if r.headers["Webhook-Id"] == first]
    assert len(same_event) == 5  # four failures and the replay: one Webhook-Id for the receiver to dedupe
    assert len({r.body for r in same_event}) == 1
    assert verify(subscription["secret"], same_event[-1].headers, same_event[-1].body)


async def test_the_outbox_row_is_written_in_the_changes_transaction(
    *,
    intake: Api,
    practice: Tenant,
    claims: Claims,
    receiver: Receiver,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    claim_id = await claims.new(intake, practice)
    # No subscription yet: no row at all.
    assert await count_deliveries(owner_engine, intake.tenant_id) == 0
    await subscribe(intake, receiver.url, "claim.status_changed")

    class Boom(Exception):
        pass

    async def change_then_fail() -> None:
        async with practice_scope(sessions, settings, practice) as scope:
            await move(scope, claim_id, ClaimState.SUBMITTED, cause=Cause.SUBMISSION)
            assert await count_deliveries(owner_engine, intake.tenant_id) == 0  # not visible before commit
            raise Boom

    with pytest.raises(Boom):
        await change_then_fail()
    assert await count_deliveries(owner_engine, intake.tenant_id) == 0  # rolled back with the change

    async with practice_scope(sessions, settings, practice) as scope:
        await move(scope, claim_id, ClaimState.SUBMITTED, cause=Cause.SUBMISSION)
    assert await count_deliveries(owner_engine, intake.tenant_id) == 1
    await run_due(sessions, intake)
    (body,) = receiver.bodies()
    assert body["data"] == {
        "claim_id": str(claim_id),
        "encounter_id": body["data"]["encounter_id"],
        "frequency": 1,
        "from_state": "ready",
        "to_state": "submitted",
        "cause": "submission",
    }


async def test_encounter_cancellation_is_an_encounter_event(
    intake: Api, claims: Claims, receiver: Receiver, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await subscribe(intake, receiver.url, "encounter.status_changed")
    encounter = await claims.encounter(intake)
    cancelled = await intake.post(f"/encounters/{encounter['id']}/cancel", {"reason": "duplicate"})
    assert cancelled.status_code == 200, cancelled.text
    assert await run_due(sessions, intake) == [DELIVERED, DELIVERED]
    created, body = sorted(receiver.bodies(), key=lambda b: b["data"]["status"] != "needs_coding")
    assert created["data"] == {"encounter_id": encounter["id"], "status": "needs_coding", "note": None}
    assert body["type"] == "encounter.status_changed"
    assert body["data"] == {"encounter_id": encounter["id"], "status": "cancelled", "note": "duplicate"}
