"""Fee schedules from a CSV: every bad cell named by line and column; a loaded schedule prices lines ahead of
the manifest's."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit.events import RequestInfo
from rcm.coding import fees
from rcm.crypto.keyring import KeyStore
from rcm.identity.principal import Role, operator_principal
from rcm.kit.errors import InvalidInput
from rcm.kit.tenant import TenantId
from rcm.tenancy.models import Tenant
from rcm.tenancy.staff import system_scope
from tests.coding.conftest import MakeStaff
from tests.coding.test_coding_api import _encounter
from tests.support import Api
from tests.workqueue.test_lease import keystore

__all__ = ["keystore"]


def test_a_bad_csv_names_every_bad_cell() -> None:
    text = "code,modifier,charge_cents\n99213,,12500\n9921,,100\n99214,X,125.00\n99213,,1\n"
    with pytest.raises(InvalidInput) as refused:
        fees.parse_csv(text)
    assert [(e.pointer, e.detail) for e in refused.value.errors] == [
        ("line 3/code", "is not a CPT or HCPCS code"),
        ("line 4/modifier", "is not a two-character modifier"),
        ("line 4/charge_cents", "is not a whole number of cents"),
        ("line 5", "99213  is given twice"),
    ]
    with pytest.raises(InvalidInput):
        fees.parse_csv("cpt,price\n99213,1\n")
    assert fees.parse_csv("code,modifier,charge_cents\n99214,,18500\nG2211,25,1650\n") == [
        ("99214", "", 18500),
        ("G2211", "25", 1650),
    ]


async def test_a_loaded_schedule_prices_ahead_of_the_manifest(
    practice_api: Api,
    tenant: Tenant,
    make_staff: MakeStaff,
    sessions: async_sessionmaker[AsyncSession],
    keystore: KeyStore,
) -> None:
    async with system_scope(
        sessions,
        keystore,
        job="coding.fees",
        tenant_ids=(TenantId(tenant.id),),
        actor=operator_principal("coding fees"),
        request=RequestInfo(request_id="test", trace_id=""),
    ) as scope:
        assert await fees.load(scope, fees.parse_csv("code,modifier,charge_cents\n99213,,14000\n")) == 1
    await _encounter(practice_api)
    coder = await make_staff(Role.CODER, tenant)
    item_id = (await coder.post("/coding/next")).json()["id"]
    coding = {
        "diagnoses": ["E11.9"],
        "lines": [{"procedure_code": "99213", "units": 2, "diagnosis_pointers": [1]}],
    }
    done = await coder.post(f"/coding/items/{item_id}/complete", coding)
    assert done.status_code == 200, done.text
    assert (
        done.json()["coding"]["lines"][0]["charge_cents"] == 28000
    )  # 2 x the loaded 14000, not the manifest's 12500
