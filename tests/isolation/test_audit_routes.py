"""The access-log routes (``/api/v1/audit``), generated from the app's route table like the tenant matrix:
an auditor scoped to practice A, given practice B's ids, finds nothing of B on any of them (404, or an
empty answer that names nothing of B), and A's own owner, coder and system get the same 403 on every one,
each refusal audited."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from litestar import Litestar
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.config import Settings
from rcm.identity.principal import Role
from rcm.identity.testing import mint_access_token, user_principal
from rcm.tenancy.models import Tenant
from tests.audit.conftest import person_event, write_together
from tests.isolation.test_route_matrix import _denials, _strip, fill, http_routes
from tests.support import Api


def _audit_routes(app: Litestar) -> list[tuple[str, str]]:
    return [(p, m) for p, m in http_routes(app) if p.startswith("/api/v1/audit")]


async def _b_ids(sessions: async_sessionmaker[AsyncSession], other_tenant: Tenant) -> dict[str, str]:
    """An event of practice B naming one of its patients, by one of its people, under break-glass."""
    patient, user = uuid.uuid4(), uuid.uuid4()
    detail = {"access": "break_glass", "break_glass_grant": str(uuid.uuid4())}
    event = person_event(other_tenant.id, user, patient, detail=detail)
    await write_together(sessions, other_tenant.id, [event])
    return {"event_id": str(event.id), "patient_id": str(patient), "user_id": str(user)}


async def test_an_auditor_of_one_practice_finds_nothing_of_another(  # noqa: PLR0917 - fixtures
    app: Litestar,
    practice_api: Api,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    b_ids = await _b_ids(sessions, other_tenant)
    auditor = user_principal(Role.AUDITOR, auditor_tenants=(tenant.id,))
    token = await mint_access_token(auditor, sessions=sessions, settings=settings)
    routes = _audit_routes(app)
    assert len(routes) >= 9
    for path, method in routes:
        # The search and its exports take B's patient as a filter; the other routes name B's ids in the path.
        params = {"patient_id": b_ids["patient_id"]} if "/events" in path else {}
        response = await practice_api.client.request(
            method, fill(path, b_ids), params=params, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code in (200, 404), f"{method} {path}: {response.status_code} {response.text}"
        for value in (str(other_tenant.id), *b_ids.values()):
            # B's ids appear only where the caller's own filter echoes them back: the path's id, or the
            # patient filter, which A's trail records with the auditor's own earlier searches.
            if value not in fill(path, b_ids) and value not in params.values():
                assert value not in response.text, f"{method} {path} shows {value} of practice B"


@pytest.fixture(params=["practice_client", "coder", "practice_owner"])
async def practice_caller(
    request: pytest.FixtureRequest,
    practice_api: Api,
    tenant: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> Api:
    if request.param == "practice_client":
        return practice_api
    role = Role.CODER if request.param == "coder" else Role.PRACTICE_OWNER
    principal = user_principal(role, home_tenant=tenant.id if role is Role.PRACTICE_OWNER else None)
    token = await mint_access_token(principal, sessions=sessions, settings=settings)
    return Api(practice_api.client, token, tenant.slug, tenant_id=str(tenant.id))


async def test_practice_callers_are_refused_every_audit_route(
    app: Litestar, practice_caller: Api, owner_engine: AsyncEngine
) -> None:
    reference: dict[str, Any] | None = None
    for path, method in _audit_routes(app):
        denials = await _denials(owner_engine)
        response = await practice_caller.client.request(
            method, fill(path, {}), headers=practice_caller.headers
        )
        assert response.status_code == 403, f"{method} {path}: {response.status_code}"
        assert await _denials(owner_engine) == denials + 1, f"{method} {path}: no denial audit event"
        body = _strip(response.json())
        reference = reference or body
        assert body == reference, f"{method} {path}: 403 body differs"
