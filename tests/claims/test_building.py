"""Claims built on a clean scrub: one per responsible payer (the encounter's coverage), once; ready when the
practice is enrolled with the payer, otherwise waiting with an enrollment item in the billing queue."""

from __future__ import annotations

import re
import uuid

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.claims.building import patient_control_number
from rcm.config import Settings
from rcm.tenancy.models import Tenant
from tests.claims.conftest import Claims, rows
from tests.conftest import practice_api_for
from tests.support import Api


def test_patient_control_number_fits_clm01_and_says_nothing_of_the_patient() -> None:
    numbers = {patient_control_number(uuid.uuid4()) for _ in range(2000)}
    assert len(numbers) == 2000
    assert all(re.fullmatch(r"C[A-Z2-7]{16}", n) for n in numbers)


async def test_building_twice_makes_one_ready_claim_with_its_lines_and_events(
    intake: Api, practice: Tenant, claims: Claims, owner_engine: AsyncEngine
) -> None:
    enc = await claims.encounter(intake)
    first = await claims.build(practice, enc["id"])
    again = await claims.build(practice, enc["id"])
    assert again == first
    stored = await rows(
        owner_engine,
        "SELECT state, frequency, payer_id, responsibility, total_charge_cents, diagnoses, coverage_id"
        " FROM rcm.claim WHERE encounter_id = :e",
        e=uuid.UUID(enc["id"]),
    )
    assert len(stored) == 1
    state, frequency, payer, responsibility, total, diagnoses, coverage = stored[0]
    assert (state, frequency, payer, responsibility) == ("ready", 1, "DEMO-MCR", "primary")
    assert total == 12500 + 1650
    assert diagnoses == ["E119", "I10"]
    assert str(coverage) == enc["coverage_id"]
    lines = await rows(
        owner_engine,
        "SELECT line_number, procedure_code, charge_cents FROM rcm.claim_line WHERE claim_id = :c"
        " ORDER BY line_number",
        c=first,
    )
    assert lines == [(1, "99213", 12500), (2, "G2211", 1650)]
    events = await rows(
        owner_engine,
        "SELECT from_state, to_state, cause FROM rcm.claim_event WHERE claim_id = :c ORDER BY created_at, id",
        c=first,
    )
    assert events == [(None, "created", "scrub"), ("created", "ready", "scrub")]


async def test_a_practice_not_enrolled_with_the_payer_gets_an_enrollment_item(
    *,
    client: AsyncTestClient[Litestar],
    tenant: Tenant,
    claims: Claims,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    # tests/conftest.py's practice lists DEMO-MCR in its manifest but was never applied: no enrollment.
    api = await practice_api_for(client, tenant, sessions, settings)
    claim_id = await claims.new(api, tenant)
    assert await rows(owner_engine, "SELECT state FROM rcm.claim WHERE id = :c", c=claim_id) == [("created",)]
    items = await rows(
        owner_engine,
        "SELECT kind, subject_type, reason, status FROM rcm.work_item WHERE subject_id = :c",
        c=claim_id,
    )
    assert items == [("billing", "claim", "enrollment", "open")]
    # Building again neither duplicates the claim nor the item.
    enc = (await rows(owner_engine, "SELECT encounter_id FROM rcm.claim WHERE id = :c", c=claim_id))[0][0]
    assert await claims.build(tenant, str(enc)) == claim_id
    assert len(await rows(owner_engine, "SELECT 1 FROM rcm.work_item WHERE subject_id = :c", c=claim_id)) == 1
