"""``ingest_bundle``: the one door the HTTP route and bulk intake (one NDJSON line, one Bundle) share."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.audit.events import RequestInfo
from rcm.config import Settings
from rcm.crypto.keyring import KeyStore
from rcm.crypto.provider import key_provider
from rcm.fhir.outcome import FhirRejected
from rcm.fhir.reader import BundleMode
from rcm.fhir.service import ingest_bundle
from rcm.identity.testing import client_principal
from rcm.kit.db import tenant_transaction
from rcm.kit.tenant import TenantContext, TenantId
from rcm.tenancy.models import Tenant
from rcm.tenancy.scope import TenantScope
from tests.fhir import bundles
from tests.fhir.test_intake import TABLES, counts


async def _ingest(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    tenant: Tenant,
    body: bytes,
    mode: BundleMode | None,
) -> list[str]:
    tenant_id = TenantId(tenant.id)
    async with tenant_transaction(sessions, TenantContext.single(tenant_id)) as session:
        scope = TenantScope(
            session=session,
            context=TenantContext.single(tenant_id),
            principal=client_principal(tenant_id),
            keyring=await KeyStore(key_provider(settings)).keyring(session, tenant_id),
            request=RequestInfo(request_id=f"bulk-{uuid.uuid4().hex}", trace_id=""),
            manifest=tenant.manifest,
        )
        # Bulk intake hands a line's bytes in chunks (any iterable of bytes).
        result = await ingest_bundle(scope, [body[:100], body[100:]], mode=mode)
    return [str(e.status) for e in result.entries]


async def test_ingest_bundle_from_chunks_and_mode_override(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, tenant: Tenant, owner_engine: AsyncEngine
) -> None:
    bundle = bundles.ehr_visit_bundle()
    bundle["entry"][2]["resource"]["subject"] = {"reference": "urn:uuid:00000000-0000-4000-8000-0000000000aa"}
    body = json.dumps(bundle).encode()
    with pytest.raises(FhirRejected) as refused:
        await _ingest(sessions, settings, tenant, body, None)  # the bundle says transaction
    assert refused.value.status_code == 422
    assert await counts(owner_engine, str(tenant.id)) == dict.fromkeys(TABLES, 0)
    # The same bytes as a batch: the encounter (and what folds into it) fails alone.
    answered = await _ingest(sessions, settings, tenant, body, BundleMode.BATCH)
    assert answered == ["201", "201", "422", "424", "424", "424"]
    found = await counts(owner_engine, str(tenant.id))
    assert (found["patient"], found["coverage"], found["encounter"]) == (1, 1, 0)
