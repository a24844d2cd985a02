"""An 837 sent to the payer is a disclosure of the patient's PHI to that payer: the accounting lists it (as
exempt, for payment) from the claim and its sent batch, and only once the batch was sent."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.claims.batches import build_batches, mark_sent
from rcm.config import Settings
from rcm.identity.principal import Role
from rcm.identity.testing import mint_access_token, user_principal
from rcm.tenancy.models import Tenant
from tests.claims.conftest import Claims, practice_scope, rows
from tests.support import Api


async def test_a_sent_claim_is_in_the_patients_accounting(  # noqa: PLR0917 - fixtures
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    intake: Api,
    practice: Tenant,
    claims: Claims,
    owner_engine: AsyncEngine,
) -> None:
    claim_id = await claims.new(intake, practice)
    [(patient_id,)] = await rows(owner_engine, "SELECT patient_id FROM rcm.claim WHERE id = :c", c=claim_id)
    auditor = user_principal(Role.AUDITOR, auditor_tenants=(practice.id,))
    token = await mint_access_token(auditor, sessions=sessions, settings=settings)

    async def accounting() -> list[dict[str, Any]]:
        response = await client.get(
            f"/api/v1/audit/patients/{patient_id}/disclosures", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, response.text
        return [i for i in response.json()["items"] if i["category"] == "claim_submission"]

    async with practice_scope(sessions, settings, practice) as scope:
        [batch] = await build_batches(scope)
    assert await accounting() == []  # batched, not sent: nothing left RCM yet
    async with practice_scope(sessions, settings, practice) as scope:
        await mark_sent(scope, batch.id)
    [sent] = await accounting()
    assert (sent["recipient_kind"], sent["recipient"], sent["purpose"], sent["what"]) == (
        "payer",
        "DEMO-MCR",
        "claim.submit",
        "claim",
    )
    assert sent["resource_ids"] == [str(claim_id), str(batch.id)]
    assert sent["accountable"] is False
    assert "payment" in sent["exemption"]
    assert sent["event_id"] is None
