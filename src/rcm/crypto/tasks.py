"""Background jobs of the crypto package."""

from __future__ import annotations

import uuid

from rcm.config import Settings
from rcm.crypto.keyring import KeyStore
from rcm.crypto.provider import key_provider
from rcm.crypto.reencrypt import SealedElsewhere, Witness, reencrypt_tenant_rows
from rcm.kit.tenant import TenantId
from rcm.worker import actor, job_context

_keystore: KeyStore | None = None


def use_keystore(store: KeyStore | None) -> None:
    """Share a KeyStore with the jobs of this process (the API's, in ``rcm dev``; a test's)."""
    global _keystore  # noqa: PLW0603 - one key cache per process
    _keystore = store


def job_keystore() -> KeyStore:
    global _keystore  # noqa: PLW0603 - one key cache per process
    if _keystore is None:
        _keystore = KeyStore(key_provider(job_context().settings))
    return _keystore


def sealed_elsewhere(settings: Settings) -> list[SealedElsewhere]:
    """Everything outside the PHI columns sealed under PHI key versions: today the blob store.

    The one place crypto names an implementation of its ``SealedElsewhere`` protocol, at the job's entry
    (the re-encryption core in ``reencrypt.py`` knows none: the ``crypto-core-knows-no-blobs`` contract).
    Blobs depend on crypto for their keys; the job composes the two.
    """
    from rcm.blobs.reseal import BlobResealer
    from rcm.blobs.store import BlobStore

    return [BlobResealer(BlobStore.from_settings(settings))]


def job_witness() -> Witness:
    """The audit trail as the re-encryption job's witness (``rcm.crypto.reencrypt.Witness``), acting as the
    job itself: composed here, at the job's entry, like ``sealed_elsewhere`` (the core knows no trail)."""
    from rcm.audit.events import request_info_from
    from rcm.audit.trail import reencryption_witness, system_actor

    return reencryption_witness(system_actor(REENCRYPT_JOB), request_info_from(None))


REENCRYPT_JOB = "crypto.reencrypt_tenant"


@actor(name=REENCRYPT_JOB, max_retries=5, time_limit_ms=60 * 60 * 1000)
async def reencrypt_tenant(*, tenant_id: str, batch_size: int = 500) -> int:
    """Re-encrypt the tenant's PHI rows and re-seal its blobs onto its active key, then retire unused
    versions; returns rows rewritten."""
    context = job_context()
    report = await reencrypt_tenant_rows(
        context.sessions(),
        job_keystore(),
        TenantId(uuid.UUID(tenant_id)),
        sealed=sealed_elsewhere(context.settings),
        witness=job_witness(),
        batch_size=batch_size,
    )
    return report.rows
