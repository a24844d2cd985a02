"""Auditors filter the access log by practice (slug or id) and by a person's email, over HTTP.

The server resolves the names to ids; a name that resolves to nothing (or to a practice outside the auditor's
grant) gives the same empty page as any search that finds nothing, never an error that would tell whether
the practice or the person exists.
"""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.config import Settings
from rcm.identity.principal import Principal, Role
from rcm.identity.testing import mint_access_token, user_principal
from rcm.tenancy.models import Tenant
from tests.audit.conftest import MakeEvent, write_events
from tests.audit.test_api import Mint, auditor_of, logged
from tests.conftest import make_tenant
from tests.identity.conftest import make_user

Client = AsyncTestClient[Litestar]


@pytest.fixture
def mint(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> Mint:
    async def _mint(principal: Principal) -> str:
        return await mint_access_token(principal, sessions=sessions, settings=settings)

    return _mint


async def _events(
    client: Client, token: str, params: dict[str, Any], path: str = "/events"
) -> httpx.Response:
    response = await client.get(
        f"/api/v1/audit{path}", params=params, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    return response


async def test_filter_by_practice_slug_and_by_a_persons_email(  # noqa: PLR0917 - pytest fixtures
    client: Client,
    mint: Mint,
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
    tenant: Tenant,
    other_tenant: Tenant,
    make_event: MakeEvent,
) -> None:
    person = await make_user(control_sessions, ["coder"])
    as_person = user_principal(Role.CODER, user_id=person.id)
    mine_here = make_event(tenant.id, actor=as_person)
    mine_there = make_event(other_tenant.id, actor=as_person)
    someone_here = make_event(tenant.id)
    someone_there = make_event(other_tenant.id)
    await write_events(sessions, [mine_here, someone_here, mine_there, someone_there])
    token = await mint(auditor_of(tenant, other_tenant))

    async def ids(**params: Any) -> set[str]:
        # The auditor's own searches land in the log too; these filters look at the events written here.
        body = (await _events(client, token, {"limit": 500, "event_type": "patient.read", **params})).json()
        return {item["id"] for item in body["items"]}

    by_slug = await ids(tenant=tenant.slug)
    assert by_slug == {str(mine_here.id), str(someone_here.id)}
    assert by_slug == await ids(tenant_id=str(tenant.id))
    by_email = await ids(actor_email=person.email.upper())  # emails compare case-insensitively
    assert by_email == {str(mine_here.id), str(mine_there.id)}
    assert await ids(actor_email=person.email, tenant=other_tenant.slug) == {str(mine_there.id)}
    assert await ids(actor=str(person.id)) == by_email  # the same person by id

    # Names that resolve to nothing: the same empty page, whether the name is unknown or out of reach.
    outside = await make_tenant(control_sessions, "c")
    await write_events(sessions, [make_event(outside.id, actor=as_person)])
    empty = {"items": [], "next_cursor": None}
    for params in (
        {"actor_email": f"nobody-{uuid.uuid4().hex[:6]}@test.invalid"},
        {"tenant": f"no-such-practice-{uuid.uuid4().hex[:6]}"},
        {"tenant": outside.slug},
        {"tenant": tenant.slug, "tenant_id": str(other_tenant.id)},
    ):
        assert (await _events(client, token, params)).json() == empty, params

    # Exports take the same filters.
    csv_text = (await _events(client, token, {"actor_email": person.email}, "/events.csv")).text
    assert {row["id"] for row in csv.DictReader(io.StringIO(csv_text))} == by_email
    ndjson = (await _events(client, token, {"tenant": other_tenant.slug}, "/events.ndjson")).text
    assert str(mine_there.id) in ndjson
    assert str(mine_here.id) not in ndjson

    # The search is itself audited: whom the email named, as an id; the email stays out of the trail.
    searched = await _events(client, token, {"actor_email": person.email})
    rows = [
        r
        for r in await logged(owner_engine, searched.headers["x-request-id"])
        if r["event_type"] == "audit.search"
    ]
    assert rows
    for row in rows:
        assert row["detail"]["filter.actor_email"] is True
        assert row["detail"]["filter.actor_email_user"] == str(person.id)
        assert person.email not in str(row["detail"])
