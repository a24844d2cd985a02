"""Loading the payer directory (operator) and writing a practice's enrollments from its manifest."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from rcm.kit.db import apply_tenant_context, create_engine, platform_transaction, session_factory
from rcm.kit.errors import FieldError, InvalidInput
from rcm.kit.models import utcnow
from rcm.kit.tenant import TenantContext, TenantId
from rcm.payers.directory import Directory, DirectoryPayer, read_directory, shipped_directory
from rcm.payers.repository import DirectoryChange, EnrollmentRepository, directory_payers, upsert_payers
from rcm.tenancy.manifest import TenantManifest

UNKNOWN_PAYER = "is not in the payer directory (load it with `rcm payers load`)"


def _row(payer: DirectoryPayer) -> dict[str, Any]:
    def service(name: str) -> tuple[str | None, str | None]:
        found = getattr(payer, name)
        return (found.connector, found.endpoint) if found is not None else (None, None)

    claims, eligibility, status = service("claims"), service("eligibility"), service("status")
    return {
        "id": payer.id,
        "name": payer.name,
        "claim_filing_indicator": payer.claim_filing_indicator,
        "claims_connector": claims[0],
        "claims_endpoint": claims[1],
        "eligibility_connector": eligibility[0],
        "eligibility_endpoint": eligibility[1],
        "status_connector": status[0],
        "status_endpoint": status[1],
        "status_inquiry_days": payer.status_inquiry_days,
        "timely_filing_days": payer.timely_filing_days,
        "appeal_days": payer.appeal_days,
        "updated_at": utcnow(),
    }


async def write_directory(session: AsyncSession, directory: Directory) -> DirectoryChange:
    """Upsert the directory's payers in the caller's transaction (the owner role's)."""
    return await upsert_payers(session, [_row(p) for p in directory.payers])


async def load_directory(admin_url: str, path: Path | None = None) -> DirectoryChange:
    """``rcm payers load``: the file (the shipped directory by default) in one transaction, as the owner."""
    directory = read_directory(path or shipped_directory())
    engine = create_engine(admin_url, pool_size=1, application_name="rcm-payers")
    try:
        async with platform_transaction(session_factory(engine)) as session:
            return await write_directory(session, directory)
    finally:
        await engine.dispose()


async def sync_enrollments(session: AsyncSession, tenant_id: TenantId, manifest: TenantManifest) -> None:
    """The practice's ``payer_enrollment`` rows become its manifest's ``payers`` (control role, in the
    manifest's transaction). A payer the directory lacks is refused by its pointer: nothing is written."""
    known = await directory_payers(session, manifest.payer_ids)
    missing = [
        FieldError(f"/payers/{index}/payer_id", UNKNOWN_PAYER)
        for index, payer in enumerate(manifest.payers)
        if payer.payer_id not in known
    ]
    if missing:
        raise InvalidInput("The manifest names payers the payer directory lacks.", errors=missing)
    now = utcnow()
    rows = [
        {
            "id": uuid.uuid4(),
            "created_at": now,
            "updated_at": now,
            "payer_id": payer.payer_id,
            "name": payer.name,
            # Defaults: the practice submits as its billing provider (NPI), to the payer's own id.
            "submitter_id": payer.submitter_id or manifest.billing_provider.npi,
            "receiver_id": payer.receiver_id or payer.payer_id,
            "credentials_reference": payer.credentials_reference,
            "timely_filing_days": payer.timely_filing_days,
        }
        for payer in manifest.payers
    ]
    context = TenantContext.single(tenant_id)
    await apply_tenant_context(session, context)
    await EnrollmentRepository(session, context).replace_all(rows)
