"""Subscription routes: who may manage them, which URLs are accepted, the secret shown once and sealed at
rest, rotation and deletion; deliveries seen by assigned staff and by no other practice."""

from __future__ import annotations

import base64
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.identity.principal import Role
from rcm.tenancy.models import Tenant
from tests.claims.conftest import Claims
from tests.coding.conftest import MakeStaff
from tests.support import Api
from tests.webhooks.conftest import DELIVERED, Receiver, run_due, subscribe

HOOK = "https://hooks.example.test/rcm"
pytestmark = pytest.mark.usefixtures("jobs")


async def stored_secret(owner_engine: AsyncEngine, subscription_id: str) -> bytes | None:
    """The secret column as the database holds it (looked at as the superuser)."""
    async with owner_engine.connect() as conn:
        found = await conn.execute(
            text("SELECT secret FROM rcm.webhook_subscription WHERE id = :id"),
            {"id": uuid.UUID(subscription_id)},
        )
        value: bytes | None = found.scalar_one()
        return value


async def test_urls_are_checked_and_the_answer_names_the_field(intake: Api) -> None:
    for url in (
        "http://hooks.example.test/rcm",  # plain http across a network
        "ftp://hooks.example.test/rcm",
        "sftp://hooks.example.test/rcm",
        "https://user:pw@hooks.example.test/rcm",
        "https://10.0.0.7/rcm",  # inside our network
        "https://169.254.169.254/latest/meta-data",
        "not a url",
    ):
        answer = await intake.post(
            "/webhooks/subscriptions", {"url": url, "event_types": ["claim.status_changed"]}
        )
        assert answer.status_code == 422, (url, answer.text)
        assert answer.json()["errors"][0]["pointer"] == "/url"
        assert "hooks.example" not in answer.text  # the refusal never echoes the input
    unknown = await intake.post("/webhooks/subscriptions", {"url": HOOK, "event_types": ["patient.created"]})
    assert unknown.status_code in (400, 422)
    empty = await intake.post("/webhooks/subscriptions", {"url": HOOK, "event_types": []})
    assert empty.status_code in (400, 422)
    missing_key = await intake.post(
        "/webhooks/subscriptions", {"url": HOOK, "event_types": ["claim.status_changed"]}, key=None
    )
    assert missing_key.status_code in (400, 422)
    assert (await intake.get("/webhooks/subscriptions")).json()["items"] == []


async def test_the_secret_is_shown_once_sealed_at_rest_rotated_and_erased(
    intake: Api, owner_engine: AsyncEngine
) -> None:
    key = uuid.uuid4().hex
    body = {"url": HOOK, "event_types": ["claim.status_changed", "coder_query.created"]}
    created = await intake.post("/webhooks/subscriptions", body, key=key)
    assert created.status_code == 201, created.text
    sub = created.json()
    assert sub["event_types"] == ["claim.status_changed", "coder_query.created"]
    assert sub["active"] is True
    retried = await intake.post("/webhooks/subscriptions", body, key=key)
    assert retried.json()["id"] == sub["id"]  # one subscription, the first answer again
    listed = (await intake.get("/webhooks/subscriptions")).json()["items"]
    assert [s["id"] for s in listed] == [sub["id"]]
    assert "secret" not in listed[0]
    assert "secret" not in (await intake.get(f"/webhooks/subscriptions/{sub['id']}")).json()

    raw = base64.b64decode(sub["secret"].removeprefix("whsec_"))
    stored = await stored_secret(owner_engine, sub["id"])
    assert stored is not None
    assert sub["secret"].encode() not in stored
    assert raw not in stored
    assert sub["secret"].removeprefix("whsec_").encode() not in stored

    paused = await intake.post(f"/webhooks/subscriptions/{sub['id']}", {"active": False})
    assert paused.status_code == 200, paused.text
    assert paused.json()["active"] is False
    assert "secret" not in paused.json()
    refused = await intake.post(
        f"/webhooks/subscriptions/{sub['id']}", {"url": "http://hooks.example.test/x"}
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["pointer"] == "/url"

    rotated = await intake.post(f"/webhooks/subscriptions/{sub['id']}/rotate", None)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["secret"] != sub["secret"]
    assert rotated.json()["secret_rotated_at"] > sub["secret_rotated_at"]

    gone = await intake.client.delete(
        intake.url(f"/webhooks/subscriptions/{sub['id']}"), headers=intake.headers
    )
    assert gone.status_code == 204
    assert (await intake.get(f"/webhooks/subscriptions/{sub['id']}")).status_code == 404
    assert (await intake.get("/webhooks/subscriptions")).json()["items"] == []
    erased = await stored_secret(owner_engine, sub["id"])
    assert erased is None


async def test_another_practice_sees_and_replays_nothing_of_ours_and_assigned_staff_do(
    *,
    intake: Api,
    other_intake: Api,
    practice: Tenant,
    claims: Claims,
    receiver: Receiver,
    sessions: async_sessionmaker[AsyncSession],
    make_staff: MakeStaff,
) -> None:
    sub = await subscribe(intake, receiver.url, "claim.status_changed")
    await claims.new(intake, practice)
    assert DELIVERED in await run_due(sessions, intake)
    delivery = (await intake.get("/webhooks/deliveries")).json()["items"][0]

    # The practice next door: its own (empty) lists, and our ids are the standard 404.
    assert (await other_intake.get("/webhooks/deliveries")).json()["items"] == []
    assert (await other_intake.get("/webhooks/subscriptions")).json()["items"] == []
    for path in (f"/webhooks/deliveries/{delivery['id']}", f"/webhooks/subscriptions/{sub['id']}"):
        assert (await other_intake.get(path)).status_code == 404
    replay = await other_intake.post(f"/webhooks/deliveries/{delivery['id']}/replay", None)
    assert replay.status_code == 404
    rotate = await other_intake.post(f"/webhooks/subscriptions/{sub['id']}/rotate", None)
    assert rotate.status_code == 404
    filtered = await intake.get(
        "/webhooks/deliveries", {"subscription_id": sub["id"], "delivery_status": "delivered"}
    )
    assert [d["id"] for d in filtered.json()["items"]] == [
        d["id"] for d in (await intake.get("/webhooks/deliveries")).json()["items"]
    ]

    # A biller assigned to the practice lists and replays its deliveries, but manages no subscription.
    biller = await make_staff(Role.BILLER, practice)
    staff_api = Api(intake.client, biller.token, intake.slug, tenant_id=intake.tenant_id)
    seen = await staff_api.get("/webhooks/deliveries", {"delivery_status": "delivered"})
    assert seen.status_code == 200, seen.text
    assert delivery["id"] in [d["id"] for d in seen.json()["items"]]
    replayed = await staff_api.post(f"/webhooks/deliveries/{delivery['id']}/replay", None)
    assert replayed.status_code == 202, replayed.text
    assert replayed.json()["webhook_id"] == delivery["webhook_id"]
    assert (await staff_api.get("/webhooks/subscriptions")).status_code == 403


async def test_a_coder_query_is_announced_without_its_question(
    *,
    intake: Api,
    practice: Tenant,
    claims: Claims,
    receiver: Receiver,
    sessions: async_sessionmaker[AsyncSession],
    make_staff: MakeStaff,
) -> None:
    await subscribe(intake, receiver.url, "coder_query.created")
    encounter = await claims.encounter(intake)
    coder = await make_staff(Role.CODER, practice)
    item_id = (await coder.post("/coding/next")).json()["id"]
    asked = await coder.post(f"/coding/items/{item_id}/queries", {"question": "Was the A1c drawn today?"})
    assert asked.status_code == 201, asked.text
    assert await run_due(sessions, intake) == [DELIVERED]
    (body,) = receiver.bodies()
    assert body["type"] == "coder_query.created"
    assert body["data"] == {"query_id": asked.json()["id"], "encounter_id": encounter["id"], "status": "open"}
    assert b"A1c" not in receiver.received[0].body
