"""The cross-practice routes (coding queue, QA, supervision), generated from the app's route table.

Staff of practice A (a coder, and a supervisor with a second factor) call every such route with practice
B's ids: nothing succeeds on B's objects (the same 404 as an unknown id), nothing of B shows in a list or a
report, and B's rows stay as they were. A practice's own callers (its system, its owner) get 403 on every
route: these are the billing company's staff routes."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Litestar
from sqlalchemy.ext.asyncio import AsyncEngine

from rcm.identity.principal import Role
from rcm.identity.testing import mint_access_token, user_principal
from rcm.tenancy.models import Tenant
from tests.coding.conftest import MakeStaff, code_sets, make_staff
from tests.coding.test_coding_api import CODING
from tests.isolation.test_route_matrix import PARAM, _snapshot, http_routes
from tests.support import Api, encounter_payload

__all__ = ["code_sets", "make_staff"]
# Practice B has no fee schedule: every line carries its charge.
PRICED = {**CODING, "lines": [{**line, "charge_cents": 5000} for line in CODING["lines"]]}  # type: ignore[attr-defined]
STAFF = ("/api/v1/coding", "/api/v1/supervision")


def staff_routes(app: Litestar) -> list[tuple[str, str]]:
    return [(p, m) for p, m in http_routes(app) if p.startswith(STAFF)]


def body_for(path: str, b_user: str, b_slug: str) -> dict[str, Any]:
    if path.endswith(("/draft", "/complete", "/review")):
        return PRICED
    if path.endswith("/queries"):
        return {"question": "Matrix question"}
    if path.endswith("/reassign"):
        return {"coder": b_user}
    if path.endswith("/priority"):
        return {"priority": 1}
    if path.endswith(("/assignments", "/qa/samples")):
        return {"tenant": b_slug}
    return {}


async def test_staff_routes_never_reach_another_practice(
    *,
    app: Litestar,
    practice_api: Api,
    other_practice_api: Api,
    tenant: Tenant,
    other_tenant: Tenant,
    make_staff: MakeStaff,
    owner_engine: AsyncEngine,
) -> None:
    routes = staff_routes(app)
    assert len(routes) >= 14
    # Practice B's data: an item completed and sampled, one in the queue, one held by B's coder.
    for _ in range(3):
        assert (await other_practice_api.post("/encounters", encounter_payload())).status_code == 201
    b_coder = await make_staff(Role.CODER, other_tenant)
    b_boss = await make_staff(Role.SUPERVISOR, other_tenant)
    done = (await b_coder.post("/coding/next")).json()["id"]
    assert (await b_coder.post(f"/coding/items/{done}/complete", PRICED)).status_code == 200
    sample = (await b_boss.post("/supervision/qa/samples", {"tenant": other_tenant.slug})).json()["samples"][
        0
    ]
    held = (await b_coder.post("/coding/next")).json()["id"]
    b_ids = {
        "item_id": held,
        "sample_id": sample["id"],
        "user_id": str(b_coder.user.id),
        "tenant_slug": other_tenant.slug,
    }
    before = await _snapshot(owner_engine, other_tenant.id)

    # A's staff, every role that reaches these routes, a QA reviewer and a supervisor of A with MFA.
    coder = await make_staff(Role.CODER, tenant, qa_reviewer=True)
    boss = await make_staff(Role.SUPERVISOR, tenant, qa_reviewer=True, mfa=True)
    await practice_api.post("/encounters", encounter_payload())  # A has work of its own
    calls = 0
    for caller in (coder, boss):
        for path, method in routes:
            for ids in (b_ids, {**b_ids, "item_id": done}):
                url = PARAM.sub(lambda m, ids=ids: ids.get(m.group(1), str(uuid.uuid4())), path)
                json = (
                    body_for(path, str(b_coder.user.id), other_tenant.slug)
                    if method in ("POST", "PUT")
                    else None
                )
                response = await caller.client.request(
                    method, url, json=json, headers=caller.headers(key=True)
                )
                calls += 1
                text = response.text
                assert str(other_tenant.id) not in text, f"{method} {url} showed practice B: {text}"
                assert held not in text
                assert done not in text
                assert sample["id"] not in text
                if "{" in path:
                    # B's object by id: the same answer as no such object (a supervisor's refusal of B's
                    # practice in a body is a 404 or a 422 naming the field, never a success).
                    assert response.status_code in (403, 404, 422), (
                        f"{method} {url}: {response.status_code} {text}"
                    )
                else:
                    assert response.status_code < 500, f"{method} {url}: {text}"
    assert calls >= 2 * len(routes)
    after = await _snapshot(owner_engine, other_tenant.id)
    assert {t: rows for t, rows in after.items() if rows != before[t] and t != "audit_event"} == {}


async def test_practice_callers_get_403_on_every_staff_route(
    app: Litestar, practice_api: Api, tenant: Tenant, sessions: Any, settings: Any
) -> None:
    owner = await mint_access_token(
        user_principal(Role.PRACTICE_OWNER, home_tenant=tenant.id), sessions=sessions, settings=settings
    )
    for token in (practice_api.token, owner):
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
        for path, method in staff_routes(app):
            url = PARAM.sub(lambda m: tenant.slug if m.group(1) == "tenant_slug" else str(uuid.uuid4()), path)
            response = await practice_api.client.request(method, url, json={}, headers=headers)
            assert response.status_code == 403, f"{method} {url}: {response.status_code} {response.text}"
