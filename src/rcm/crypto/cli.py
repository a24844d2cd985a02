"""``rcm keys rotate`` and ``rcm tenants offboard``: key operations for operators.

The functions doing the work (``rotate_keys``, ``offboard_tenant``) are separate from the click commands;
each records its audit event in the same transaction as the key change.
"""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass

import click
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit.events import Action, AuditEvent, Outcome, RequestInfo, request_info_from
from rcm.audit.trail import record, reencryption_witness
from rcm.config import Settings, get_settings
from rcm.crypto.keyring import KEYRING_TTL_SECONDS
from rcm.crypto.provider import KeyProvider
from rcm.identity.principal import operator_principal
from rcm.kit.telemetry import current_trace_id
from rcm.kit.tenant import TenantId
from rcm.tenancy.vocabulary import TenantStatus


@dataclass(frozen=True, slots=True)
class RotationResult:
    slug: str
    tenant_id: uuid.UUID
    rewrapped: int
    version: int
    reencrypted_inline: int | None  # rows, when no broker was configured and the job ran in this process
    resealed_inline: int | None = None  # blobs, likewise


def _database(settings: Settings) -> Settings:
    """Key operations re-wrap signing keys and revoke API clients: they run as the control role."""
    from rcm.kit.cli import role_database

    return role_database(settings, control=True)


REENCRYPT_DELAY_MS = int((KEYRING_TTL_SECONDS + 5) * 1000)


def _audit(
    session: AsyncSession, tenant_id: TenantId, event_type: str, action: Action, detail: dict[str, int | bool]
) -> None:
    """Key operations are recorded in the tenant's chain, in the same transaction as the change."""
    record(
        session,
        AuditEvent(
            tenant_id=tenant_id,
            event_type=event_type,
            action=action,
            outcome=Outcome.SUCCESS,
            request=RequestInfo(request_id=uuid.uuid4().hex, trace_id=current_trace_id()),
            actor=operator_principal(event_type),
            resource_type="data_key",
            detail=detail,
        ),
    )


async def rotate_keys(
    settings: Settings, *, slug: str | None, new_kek: bool, echo: bool = True
) -> tuple[str | None, list[RotationResult]]:
    """Optionally add a KEK; then per tenant: re-wrap its keys, rotate its PHI key, queue re-encryption."""
    from rcm.config import control_database_url
    from rcm.crypto.keyring import KeyStore
    from rcm.crypto.provider import LocalFileKeyProvider, key_provider
    from rcm.crypto.reencrypt import reencrypt_tenant_rows
    from rcm.crypto.tasks import reencrypt_tenant, sealed_elsewhere, use_keystore
    from rcm.kit.db import create_engine, platform_transaction, session_factory, tenant_transaction
    from rcm.kit.tenant import TenantContext, TenantId
    from rcm.tenancy.repository import not_offboarded_tenants
    from rcm.worker import configure_jobs, enqueue, setup_broker

    provider = key_provider(settings)
    added: str | None = None
    if new_kek:
        if not isinstance(provider, LocalFileKeyProvider):
            raise click.UsageError("--new-kek needs the local KEK provider; rotate a KMS key in the KMS")
        added = provider.add_kek()
    store = KeyStore(provider)
    setup_broker(settings)
    engine = create_engine(control_database_url(settings), pool_size=2, application_name="rcm-cli")
    sessions: async_sessionmaker[AsyncSession] = session_factory(engine)
    configure_jobs(settings, sessions=sessions)
    use_keystore(store)
    results: list[RotationResult] = []
    try:
        await _rewrap_signing_keys(sessions, provider, echo=echo)
        async with platform_transaction(sessions) as session:
            tenants = await not_offboarded_tenants(session, slug=slug)
        if slug is not None and not tenants:
            raise click.ClickException(f"no active tenant with slug {slug!r}")
        for tenant_id, tenant_slug in tenants:
            tid = TenantId(tenant_id)
            async with tenant_transaction(sessions, TenantContext.single(tid)) as session:
                rewrapped = await store.rewrap(session, tid)
                version = await store.rotate(session, tid)
                _audit(
                    session,
                    tid,
                    "keys.rotate",
                    Action.EXECUTE,
                    {"phi_version": version, "rewrapped": rewrapped},
                )
                if settings.broker_url:
                    # Start once every process's cached keyring knows the new version (KEYRING_TTL_SECONDS).
                    enqueue(session, reencrypt_tenant, tenant_id=tenant_id, delay_ms=REENCRYPT_DELAY_MS)
            inline = resealed = None
            if not settings.broker_url:
                # No broker: no worker elsewhere would ever see the job, so it runs here and now.
                report = await reencrypt_tenant_rows(
                    sessions,
                    store,
                    tid,
                    sealed=sealed_elsewhere(settings),
                    witness=reencryption_witness(operator_principal("keys rotate"), request_info_from(None)),
                )
                inline, resealed = report.rows, report.resealed
            results.append(RotationResult(tenant_slug, tenant_id, rewrapped, version, inline, resealed))
            if echo:
                job = (
                    "queued re-encryption"
                    if inline is None
                    else f"re-encrypted {inline} rows and re-sealed {resealed} blobs"
                )
                click.echo(f"{tenant_slug}: re-wrapped {rewrapped} keys, PHI key now v{version}, {job}")
    finally:
        use_keystore(None)
        await engine.dispose()
    return added, results


async def _rewrap_signing_keys(
    sessions: async_sessionmaker[AsyncSession], provider: KeyProvider, *, echo: bool
) -> None:
    """Access-token signing keys are wrapped under the KEK too: re-wrap them, or retiring the old KEK
    would stop token issuance. Recorded on the platform chain in the same transaction."""
    from rcm.identity import audit_hooks
    from rcm.identity.keys import rewrap_signing_keys
    from rcm.kit.db import platform_transaction

    async with platform_transaction(sessions) as session:
        result = await rewrap_signing_keys(session, provider)
        await audit_hooks.signing_keys_rewrapped(
            session,
            request=audit_hooks.request_info(None),
            principal=operator_principal("keys rotate"),
            rewrapped=len(result.rewrapped),
            unreadable=len(result.unreadable),
        )
    if echo:
        click.echo(f"re-wrapped {len(result.rewrapped)} signing key(s) under {provider.current_kek_id}")
    for kid in result.unreadable:
        click.echo(
            f"signing key {kid} is under a KEK this provider lacks; run rcm identity rotate-signing-key",
            err=True,
        )


async def offboard_tenant(settings: Settings, slug: str) -> uuid.UUID:
    """Mark the tenant offboarded, crypto-shred its keys and revoke its API clients, in one transaction."""
    from rcm.config import control_database_url
    from rcm.crypto.keyring import KeyStore
    from rcm.crypto.provider import key_provider
    from rcm.identity.clients import revoke_tenant_clients
    from rcm.kit.db import create_engine, platform_transaction, session_factory, tenant_transaction
    from rcm.kit.tenant import TenantContext, TenantId
    from rcm.tenancy.cache import tenants_changed
    from rcm.tenancy.repository import set_tenant_status, tenant_by_slug

    engine = create_engine(control_database_url(settings), pool_size=1, application_name="rcm-cli")
    sessions = session_factory(engine)
    try:
        async with platform_transaction(sessions) as session:
            tenant = await tenant_by_slug(session, slug)
        if tenant is None:
            raise click.ClickException(f"no tenant with slug {slug!r}")
        tid = TenantId(tenant.id)
        async with tenant_transaction(sessions, TenantContext.single(tid)) as session:
            await set_tenant_status(session, tid, TenantStatus.OFFBOARDED)
            await KeyStore(key_provider(settings)).shred(session, tid)
            revoked = await revoke_tenant_clients(session, tid)
            _audit(
                session,
                tid,
                "tenant.offboard",
                Action.DELETE,
                {"keys_destroyed": True, "clients_revoked": revoked},
            )
        tenants_changed()  # an API in this process refuses the tenant at once (others within their TTL)
        return tenant.id
    finally:
        await engine.dispose()


@click.group()
def keys() -> None:
    """Key-encryption keys and tenant data keys."""


@keys.command("rotate")
@click.option("--tenant", "slug", default=None, help="Only this tenant (slug); default: every active tenant.")
@click.option("--new-kek", is_flag=True, help="First create a new key-encryption key and re-wrap under it.")
def keys_rotate(slug: str | None, new_kek: bool) -> None:
    """Re-wrap data keys under the current KEK, rotate PHI keys and re-encrypt PHI in the background."""
    from rcm.kit.cli import run

    settings = _database(get_settings())
    added, results = run(lambda: rotate_keys(settings, slug=slug, new_kek=new_kek))
    if added:
        click.echo(f"new key-encryption key {added} is current")
    click.echo(f"rotated {len(results)} tenant(s)")


@click.command("offboard")
@click.argument("slug")
@click.option("--yes", is_flag=True, help="Confirm: the tenant's PHI becomes unreadable, for good.")
def tenants_offboard(slug: str, yes: bool) -> None:
    """Offboard tenant SLUG: mark it offboarded, shred its keys, revoke its API clients (irreversible)."""
    from rcm.kit.cli import run

    if not yes:
        click.echo("refusing without --yes: offboarding destroys the tenant's keys irreversibly", err=True)
        sys.exit(2)
    settings = _database(get_settings())
    tenant_id = run(lambda: offboard_tenant(settings, slug))
    click.echo(f"tenant {slug} ({tenant_id}) offboarded; its data keys are destroyed")
