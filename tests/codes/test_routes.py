"""GET /api/v1/codes/{system}/{code} and /api/v1/codes/{system}?q=: for staff and practice systems."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.codes.importers.icd10cm import from_order_file
from rcm.codes.importers.operator import from_operator_file
from rcm.codes.models import CodeSet
from rcm.codes.service import load_release
from rcm.config import Settings
from rcm.identity.principal import Role
from rcm.identity.testing import mint_access_token, user_principal
from rcm.kit.tenant import TenantId
from rcm.tenancy.models import Tenant
from tests.codes.conftest import CODE_TABLES, write
from tests.codes.test_check import order_line
from tests.support import Api

ICD = [
    ("E10", "0", "Type 1 diabetes mellitus"),
    ("E109", "1", "Type 1 diabetes mellitus without complications"),
    ("E11", "0", "Type 2 diabetes mellitus"),
    ("E119", "1", "Type 2 diabetes mellitus without complications"),
    ("E1165", "1", "Type 2 diabetes mellitus with hyperglycemia"),
    ("I10", "1", "Essential (primary) hypertension"),
    ("R051", "1", "Acute cough"),
]


async def _clear(owner_engine: AsyncEngine) -> None:
    async with owner_engine.begin() as conn:
        for table in CODE_TABLES:
            await conn.execute(text(f"DELETE FROM rcm.{table}"))  # noqa: S608 - constant names


@pytest.fixture
async def loaded(owner_engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[None]:
    """Committed releases (the app reads through its own pool); the code tables are emptied before and
    after, as no other test may count on what one leaves there."""
    await _clear(owner_engine)
    order = write(
        tmp_path / "icd10cm_order_2027.txt", "".join(order_line(i, *row) for i, row in enumerate(ICD))
    )
    cpt = write(tmp_path / "cpt.csv", 'code,description\n99213,"Office visit, established (test wording)"\n')
    async with owner_engine.connect() as conn, conn.begin():
        session = AsyncSession(bind=conn)
        await load_release(
            session,
            from_order_file(
                order, label="FY2027", effective_from=date(2026, 10, 1), effective_through=date(2027, 9, 30)
            ),
        )
        await load_release(
            session, from_operator_file(cpt, CodeSet.CPT, label="CPT test", effective_from=date(2026, 1, 1))
        )
        await session.close()
    yield
    await _clear(owner_engine)


async def _api(
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    *roles: Role,
    home: Tenant | None = None,
) -> Api:
    principal = user_principal(*roles, home_tenant=TenantId(home.id) if home else None)
    return Api(client, await mint_access_token(principal, sessions=sessions, settings=settings), "")


async def test_lookup_answers_validity_on_the_date(
    loaded: None,
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    coder = await _api(client, sessions, settings, Role.CODER)
    ok = await client.get("/api/v1/codes/icd10cm/E11.9?on=2027-01-02", headers=coder.headers)
    assert ok.status_code == 200, ok.text
    assert ok.json() == {
        "system": "icd10cm",
        "code": "E11.9",
        "on": "2027-01-02",
        "valid": True,
        "description": "Type 2 diabetes mellitus without complications",
        "reason": None,
        "warning": None,
    }
    header = (await client.get("/api/v1/codes/icd10cm/E11?on=2027-01-02", headers=coder.headers)).json()
    assert header["valid"] is False
    assert header["reason"] == "header code, not billable"
    unknown = (await client.get("/api/v1/codes/cpt/99499?on=2027-01-02", headers=coder.headers)).json()
    assert unknown["reason"] == "unknown code"
    late = (await client.get("/api/v1/codes/icd10cm/I10?on=2027-11-02", headers=coder.headers)).json()
    assert late["valid"] is True
    assert "newest ICD-10-CM release loaded is FY2027 (through 2027-09-30)" in late["warning"]
    missing = (await client.get("/api/v1/codes/hcpcs/G2211?on=2027-01-02", headers=coder.headers)).json()
    assert missing["reason"] == "no HCPCS Level II code set loaded"

    nosuch = await client.get("/api/v1/codes/snomed/1234", headers=coder.headers)
    assert nosuch.status_code == 404
    assert "snomed" in nosuch.json()["detail"]
    bad_date = await client.get("/api/v1/codes/icd10cm/E11.9?on=2027-13-01", headers=coder.headers)
    assert bad_date.status_code in (400, 422)
    assert "on" in bad_date.text


async def test_search_ranks_and_pages(
    loaded: None,
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    biller = await _api(client, sessions, settings, Role.BILLER)
    found = await client.get(
        "/api/v1/codes/icd10cm", params={"q": "type 2 diabetes", "on": "2027-01-02"}, headers=biller.headers
    )
    assert found.status_code == 200, found.text
    codes = [item["code"] for item in found.json()["items"]]
    # Every word must match (type 1 lacks "2"); the description the words say most of ranks first.
    assert codes == ["E11", "E11.65", "E11.9"]
    ranked = await client.get(
        "/api/v1/codes/icd10cm", params={"q": "diabetes", "on": "2027-01-02"}, headers=biller.headers
    )
    assert [i["code"] for i in ranked.json()["items"]] == ["E10", "E11", "E11.65", "E10.9", "E11.9"]
    ranks = [i["rank"] for i in ranked.json()["items"]]
    assert ranks == sorted(ranks, reverse=True)
    assert "I10" not in codes
    by_code = await client.get(
        "/api/v1/codes/icd10cm", params={"q": "E11", "on": "2027-01-02"}, headers=biller.headers
    )
    assert [i["code"] for i in by_code.json()["items"]] == ["E11", "E11.65", "E11.9"]

    first = (
        await client.get(
            "/api/v1/codes/icd10cm",
            params={"q": "diabetes", "on": "2027-01-02", "limit": 2},
            headers=biller.headers,
        )
    ).json()
    assert len(first["items"]) == 2
    assert first["next_cursor"]
    rest = (
        await client.get(
            "/api/v1/codes/icd10cm",
            params={"q": "diabetes", "on": "2027-01-02", "limit": 10, "cursor": first["next_cursor"]},
            headers=biller.headers,
        )
    ).json()
    seen = [i["code"] for i in first["items"] + rest["items"]]
    assert sorted(seen) == ["E10", "E10.9", "E11", "E11.65", "E11.9"]
    assert rest["next_cursor"] is None
    bad_cursor = await client.get(
        "/api/v1/codes/icd10cm", params={"q": "diabetes", "cursor": "zz"}, headers=biller.headers
    )
    assert bad_cursor.status_code == 422


async def test_practice_systems_may_look_up_owners_may_not(
    *,
    loaded: None,
    client: AsyncTestClient[Litestar],
    practice_api: Api,
    tenant: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    ok = await client.get("/api/v1/codes/cpt/99213?on=2026-06-01", headers=practice_api.headers)
    assert ok.status_code == 200, ok.text
    assert ok.json()["valid"] is True
    owner = await _api(client, sessions, settings, Role.PRACTICE_OWNER, home=tenant)
    assert (await client.get("/api/v1/codes/cpt/99213", headers=owner.headers)).status_code == 403
    assert (await client.get("/api/v1/codes/cpt/99213")).status_code == 401


async def test_hostile_input_is_refused_not_a_500(
    loaded: None,
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    coder = await _api(client, sessions, settings, Role.CODER)
    for url in (
        "/api/v1/codes/icd10cm/E11%009",
        "/api/v1/codes/icd10cm?q=diab%00etes",
        "/api/v1/codes/icd10cm?q=%22%27%28%29%26%7C%21%3A*",
        "/api/v1/codes/icd10cm/" + "E" * 300,
        "/api/v1/codes/ic%00d/E11",
    ):
        response = await client.get(url, headers=coder.headers)
        assert response.status_code < 500, f"{url}: {response.status_code} {response.text}"
