from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.crypto import KeyStore, LocalFileKeyProvider
from rcm.crypto.fields import seal, unseal
from rcm.kit.db import tenant_transaction
from rcm.kit.tenant import TenantContext, TenantId
from rcm.patients.models import Coverage
from rcm.tenancy.models import Tenant


async def test_seal_takes_exactly_the_declared_phi_columns(
    tmp_path: Path, sessions: async_sessionmaker[AsyncSession], tenant: Tenant
) -> None:
    store = KeyStore(LocalFileKeyProvider(tmp_path / "keks"))
    async with tenant_transaction(sessions, TenantContext.single(TenantId(tenant.id))) as session:
        keyring = await store.keyring(session, TenantId(tenant.id))
    row_id = uuid.uuid4()
    with pytest.raises(ValueError, match="seal exactly its PHI columns"):
        seal(keyring, Coverage, row_id, {"member_id": "M1"})  # group_number forgotten
    with pytest.raises(ValueError, match="seal exactly its PHI columns"):
        seal(keyring, Coverage, row_id, {"member_id": "M1", "group_number": None, "payer_id": "X"})
    # A self coverage: no subscriber demographics.
    values: dict[str, str | None] = dict.fromkeys(Coverage.__phi_columns__, None)
    values["member_id"] = "M1"
    sealed = seal(keyring, Coverage, row_id, values)
    assert sealed["group_number"] is None
    assert isinstance(sealed["member_id"], bytes)
    assert b"M1" not in sealed["member_id"]
    row = Coverage(id=row_id, **sealed)
    assert unseal(keyring, row) == values
