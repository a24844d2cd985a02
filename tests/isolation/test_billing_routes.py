"""The billing routes (queue and claim actions), generated from the app's route table: a biller and a
supervisor of practice A call every one with practice B's claim and billing item: nothing succeeds on B's
objects (the same 404 as an unknown id), nothing of B shows, and B's rows stay as they were."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from litestar import Litestar
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.claims.building import open_billing_item
from rcm.claims.states import ClaimState
from rcm.config import Settings
from rcm.identity.principal import Role
from rcm.tenancy.models import Tenant
from rcm.workqueue.models import BillingReason
from tests.claims.conftest import (  # noqa: F401 - fixtures
    Claims,
    claims,
    intake,
    make_staff,
    other_intake,
    other_practice,
    payer_directory,
    practice,
    practice_scope,
    rows,
)
from tests.coding.conftest import MakeStaff
from tests.isolation.test_route_matrix import PARAM, _snapshot, http_routes
from tests.ledger.support import apply_era, era_file
from tests.support import Api
from tests.x12 import remittances as rm

BILLING = ("/api/v1/billing", "/api/v1/supervision/billing")


def body_for(path: str, other: Tenant) -> dict[str, Any]:
    if path.endswith("/route"):  # an unassigned payment, routed (by hand) to practice B
        return {"tenant": other.slug}
    if path.endswith("/release"):  # practice B's held payment, posted anyway
        return {"action": "post", "reason": "matrix", "accept_imbalance": True}
    if path.endswith("/complete"):
        return {"action": "close", "reason": "matrix"}
    return {"reason": "matrix"}


async def test_billing_routes_never_reach_another_practice(
    *,
    app: Litestar,
    intake: Api,  # noqa: F811
    other_intake: Api,  # noqa: F811
    practice: Tenant,  # noqa: F811
    other_practice: Tenant,  # noqa: F811
    claims: Claims,  # noqa: F811
    make_staff: MakeStaff,  # noqa: F811
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    routes = [(p, m) for p, m in http_routes(app) if p.startswith(BILLING)]
    assert len(routes) >= 10
    # Practice B: a rejected claim with its billing item (held by B's biller), a paid one with its number.
    b_claim = await claims.new(other_intake, other_practice)
    await claims.walk(other_practice, b_claim, ClaimState.SUBMITTED, ClaimState.REJECTED)
    paid = await claims.new(other_intake, other_practice)
    await claims.walk(
        other_practice, paid, ClaimState.SUBMITTED, ClaimState.ACCEPTED, ClaimState.PAID, icn="B-1"
    )
    async with practice_scope(sessions, settings, other_practice) as scope:
        b_item = await open_billing_item(scope, b_claim, BillingReason.REJECTION, now=datetime.now(UTC))
    # and a payment held (BPR02 off by a cent): its review is B's alone.
    held = await apply_era(
        sessions, settings, other_practice, era_file(rm.paid_claim(1), trace="B-HELD", off_by=1)
    )
    assert held.held == 1
    b_remittance = (
        await rows(owner_engine, "SELECT id FROM rcm.remittance WHERE tenant_id = :t", t=other_practice.id)
    )[0].id
    b_biller = await make_staff(Role.BILLER, other_practice)
    assert (await b_biller.post("/billing/next")).status_code == 200
    before = await _snapshot(owner_engine, other_practice.id)

    await claims.new(intake, practice)  # A has claims of its own
    biller = await make_staff(Role.BILLER, practice)
    boss = await make_staff(Role.SUPERVISOR, practice)
    calls = 0
    for caller in (biller, boss):
        for path, method in routes:
            for claim_id in (b_claim, paid):
                ids = {"claim_id": str(claim_id), "item_id": str(b_item), "remittance_id": str(b_remittance)}
                url = PARAM.sub(lambda m, ids=ids: ids.get(m.group(1), str(uuid.uuid4())), path)
                json = body_for(path, other_practice) if method == "POST" else None
                response = await caller.client.request(
                    method, url, json=json, headers=caller.headers(key=True)
                )
                calls += 1
                text = response.text
                assert str(other_practice.id) not in text, f"{method} {url} showed practice B: {text}"
                assert str(b_claim) not in text
                assert str(paid) not in text
                if "{" in path:
                    # Routing an unassigned payment is a supervisor's: a biller is refused by role first, and
                    # B's slug in the body is a 422 naming /tenant, as an unknown slug is.
                    role_bound = caller is biller and "/unassigned-remittances/" in path
                    allowed = {403, 404} if role_bound else {404, 422} if path.endswith("/route") else {404}
                    assert response.status_code in allowed, f"{method} {url}: {response.status_code} {text}"
                else:
                    assert response.status_code < 500, f"{method} {url}: {text}"
    assert calls == 4 * len(routes)
    # Nor may A's staff route B's held payment, to A or to the unassigned-ERA queue: the same 404.
    for caller in (biller, boss):
        for where in ({"tenant": practice.slug}, {"unassigned": True}):
            routed = await caller.post(
                f"/billing/remittances/{b_remittance}/release",
                {"action": "route", "reason": "matrix", **where},
            )
            assert routed.status_code == 404, routed.text
            assert str(other_practice.id) not in routed.text
    after = await _snapshot(owner_engine, other_practice.id)
    assert {t: rows for t, rows in after.items() if rows != before[t] and t != "audit_event"} == {}
