"""Practices enrolled with directory payers (their manifests applied as the platform applies them), their
systems and billers, and claims built the way a clean scrub builds them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.audit.events import RequestInfo
from rcm.claims.building import claims_for_clean_scrub
from rcm.claims.service import move
from rcm.claims.states import Cause, ClaimState
from rcm.codes.loading import load_demo_code_sets
from rcm.config import Settings
from rcm.crypto.keyring import KeyStore
from rcm.crypto.provider import key_provider
from rcm.identity.principal import Role
from rcm.identity.testing import user_principal
from rcm.kit.db import platform_transaction, tenant_transaction
from rcm.kit.tenant import TenantContext, TenantId
from rcm.payers.service import load_directory
from rcm.scrub.service import load_scrub_input
from rcm.tenancy.manifest import validate_manifest
from rcm.tenancy.models import Tenant
from rcm.tenancy.scope import TenantScope
from rcm.tenancy.service import apply_manifest
from tests.coding.conftest import MakeStaff
from tests.conftest import practice_api_for
from tests.support import Api, encounter_payload


@pytest.fixture(scope="session", autouse=True)
def payer_directory(admin_url: str) -> None:
    """The shipped directory, loaded once as the operator loads it (idempotent: global reference rows)."""
    import asyncio

    asyncio.run(load_directory(admin_url))


async def enrolled_practice(control: async_sessionmaker[AsyncSession], label: str, **extra: Any) -> Tenant:
    slug = f"claims-{label}-{uuid.uuid4().hex[:8]}"
    document = {
        "slug": slug,
        "name": f"Claims practice {label}",
        "billing_provider": {"npi": "1003000126", "name": "Test Group Practice"},
        "payers": [
            {
                "payer_id": "DEMO-MCR",
                "name": "Demo Medicare",
                "submitter_id": "SUBMIT01",
                "credentials_reference": "env:DEMO_MCR_CREDENTIALS",
            },
            {"payer_id": "DEMO-BCX", "name": "Demo Blue Cross", "receiver_id": "BCX-RECEIVER"},
        ],
        **extra,
    }
    async with platform_transaction(control) as session:
        tenant, _ = await apply_manifest(session, validate_manifest(document))
    return tenant


@pytest.fixture
async def practice(control_sessions: async_sessionmaker[AsyncSession]) -> Tenant:
    return await enrolled_practice(control_sessions, "a")


@pytest.fixture
async def other_practice(control_sessions: async_sessionmaker[AsyncSession]) -> Tenant:
    return await enrolled_practice(control_sessions, "b")


@pytest.fixture
async def intake(
    client: AsyncTestClient[Litestar],
    practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> Api:
    return await practice_api_for(client, practice, sessions, settings)


@pytest.fixture
async def other_intake(
    client: AsyncTestClient[Litestar],
    other_practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> Api:
    return await practice_api_for(client, other_practice, sessions, settings)


@pytest.fixture
def make_staff(
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> MakeStaff:
    return MakeStaff(client, sessions, control_sessions, settings)


@asynccontextmanager
async def practice_scope(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    tenant: Tenant,
    *,
    role: Role = Role.BILLER,
) -> AsyncIterator[TenantScope]:
    """A committed unit of work in one practice, as the scrubber's request would have."""
    tenant_id = TenantId(tenant.id)
    context = TenantContext.single(tenant_id)
    async with tenant_transaction(sessions, context) as session:
        yield TenantScope(
            session=session,
            context=context,
            principal=user_principal(role),
            keyring=await KeyStore(key_provider(settings)).keyring(session, tenant_id),
            request=RequestInfo(request_id="claims-test", trace_id=""),
            manifest=tenant.manifest,
            access="assignment",
        )


class Claims:
    """Encounters sent by a practice's system, then built into claims as a clean scrub builds them."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessions, self.settings = sessions, settings

    async def encounter(self, api: Api, **overrides: Any) -> dict[str, Any]:
        created = await api.post("/encounters", encounter_payload(**overrides))
        assert created.status_code == 201, created.text
        body: dict[str, Any] = created.json()
        return body

    async def build(self, tenant: Tenant, encounter_id: str) -> uuid.UUID:
        async with practice_scope(self.sessions, self.settings, tenant) as scope:
            data = await load_scrub_input(scope, uuid.UUID(encounter_id), lock=True)
            claim_id = await claims_for_clean_scrub(scope, data, now=datetime.now(UTC))
        assert claim_id is not None
        return claim_id

    async def new(self, api: Api, tenant: Tenant, **overrides: Any) -> uuid.UUID:
        return await self.build(tenant, (await self.encounter(api, **overrides))["id"])

    async def walk(
        self, tenant: Tenant, claim_id: uuid.UUID, *states: ClaimState, icn: str | None = None
    ) -> None:
        """Move the claim along ``states`` as acknowledgments and remittances would (the payer's claim
        control number learnt on acceptance)."""
        async with practice_scope(self.sessions, self.settings, tenant) as scope:
            for state in states:
                await move(
                    scope,
                    claim_id,
                    state,
                    cause=Cause.ACKNOWLEDGMENT,
                    payer_claim_control_number=icn if state is ClaimState.ACCEPTED else None,
                )


@pytest.fixture
def claims(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> Claims:
    return Claims(sessions, settings)


async def rows(owner_engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with owner_engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())


TIN_ENV = "CLAIMS_TEST_TIN"


@pytest.fixture
async def clean_practice(
    control_sessions: async_sessionmaker[AsyncSession], admin_url: str, monkeypatch: pytest.MonkeyPatch
) -> Tenant:
    """A practice whose demo-coded encounters pass the scrubber: a TIN by reference, filing windows, and
    the demo's code sets and edits loaded (checksums only when they already are)."""
    monkeypatch.setenv(TIN_ENV, "12-3456789")
    await load_demo_code_sets(admin_url)
    return await enrolled_practice(
        control_sessions,
        "clean",
        tin_reference=f"env:{TIN_ENV}",
        payers=[{"payer_id": "DEMO-MCR", "name": "Demo Medicare", "timely_filing_days": 365}],
    )


@pytest.fixture
async def clean_intake(
    client: AsyncTestClient[Litestar],
    clean_practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> Api:
    return await practice_api_for(client, clean_practice, sessions, settings)


# What the demo's code sets and edits know: an encounter coded so passes every rule.
DEMO_CODED: dict[str, Any] = {
    "diagnoses": [{"code": "E11.9"}, {"code": "I10"}],
    "charges": [{"procedure_code": "99213", "charge_cents": 12500, "units": 1, "diagnosis_pointers": [1, 2]}],
}


BILLING_TIN_ENV = "CLAIMS_BILLING_TEST_TIN"
# A billing address with its ZIP+4 and an EDI contact: what an 837 needs of the manifest beyond the NPI.
BILLING_ADDRESS = {
    "line1": "100 Example Way",
    "city": "Springfield",
    "state": "IL",
    "postal_code": "627011234",
}
SUBMITTER_CONTACT = {"name": "Demo EDI Desk", "phone": "5550100100", "email": "edi@demo.rcm.test"}


@pytest.fixture
async def billing_practice(
    control_sessions: async_sessionmaker[AsyncSession], admin_url: str, monkeypatch: pytest.MonkeyPatch
) -> Tenant:
    """A practice whose batches render as 837s: TIN by reference, address, submitter contact, two payers
    with filing windows, the demo's code sets (its DEMO_CODED encounters pass the scrubber)."""
    return await billing_enrolled(control_sessions, admin_url, monkeypatch, "billing")


async def billing_enrolled(
    control_sessions: async_sessionmaker[AsyncSession],
    admin_url: str,
    monkeypatch: pytest.MonkeyPatch,
    label: str,
    **settings: Any,
) -> Tenant:
    """A practice as ``billing_practice`` makes it (several may exist in one test); ``settings`` are further
    manifest keys (``claim_type="institutional"``...)."""
    monkeypatch.setenv(BILLING_TIN_ENV, "12-3456789")
    await load_demo_code_sets(admin_url)
    return await enrolled_practice(
        control_sessions,
        label,
        tin_reference=f"env:{BILLING_TIN_ENV}",
        address=BILLING_ADDRESS,
        submitter_contact=SUBMITTER_CONTACT,
        payers=[
            {
                "payer_id": "DEMO-MCR",
                "name": "Demo Medicare",
                "timely_filing_days": 365,
                "submitter_id": "SUBMIT01",
            },
            {
                "payer_id": "DEMO-BCX",
                "name": "Demo Blue Cross",
                "timely_filing_days": 365,
                "receiver_id": "BCX-RECEIVER",
            },
        ],
        **settings,
    )


@pytest.fixture
async def billing_intake(
    client: AsyncTestClient[Litestar],
    billing_practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> Api:
    return await practice_api_for(client, billing_practice, sessions, settings)


@pytest.fixture
async def institutional_practice(
    control_sessions: async_sessionmaker[AsyncSession], admin_url: str, monkeypatch: pytest.MonkeyPatch
) -> Tenant:
    """A billing practice whose encounters are institutional (837I) unless they say otherwise."""
    return await billing_enrolled(
        control_sessions, admin_url, monkeypatch, "institutional", claim_type="institutional"
    )


@pytest.fixture
async def institutional_api(
    client: AsyncTestClient[Litestar],
    institutional_practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> Api:
    return await practice_api_for(client, institutional_practice, sessions, settings)
