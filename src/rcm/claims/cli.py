"""``rcm claims batch [SLUG...]``: group ready claims into submission batches (per practice and payer),
allocating their interchange control numbers; ``rcm claims follow-ups [SLUG...]``: open follow-up items for
claims without an answer; ``rcm claims fetch [SLUG...]``: fetch the payers' responses (999, 277CA, 835) and
apply them. Operator jobs, as the app role."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import click

from rcm.config import get_settings

if TYPE_CHECKING:
    import uuid

    from sqlalchemy.ext.asyncio import AsyncSession

    from rcm.tenancy.scope import SystemScope


@click.group()
def claims() -> None:
    """Claims: submission batches and follow-ups."""


@claims.command("batch")
@click.argument("slugs", nargs=-1)
def batch(slugs: tuple[str, ...]) -> None:
    """Batch the ready claims of SLUGS (default: every practice not offboarded). Prints one line per batch."""
    from rcm.kit.cli import role_database, run

    role_database(get_settings())
    for line in run(lambda: _batch(list(slugs))):
        click.echo(line)


async def _batch(slugs: list[str]) -> list[str]:
    from rcm.claims.batches import build_batches

    async def job(scope: SystemScope) -> list[str]:
        batches = await build_batches(scope)
        return [
            f"{b.tenant_id} {b.payer_id:<12} ISA13={b.interchange_control_number:09d} "
            f"sender={b.sender_id} claims={b.claim_count}"
            for b in batches
        ] or ["no ready claims to batch"]

    return await _in_practices(slugs, "claims.build_batches", "claims batch", job)


@claims.command("follow-ups")
@click.argument("slugs", nargs=-1)
def follow_ups(slugs: tuple[str, ...]) -> None:
    """Open a billing-queue follow-up for each claim without an answer past its payer's status-inquiry
    days, in SLUGS (default: every practice not offboarded)."""
    from rcm.kit.cli import role_database, run

    role_database(get_settings())
    for line in run(lambda: _follow_ups(list(slugs))):
        click.echo(line)


async def _follow_ups(slugs: list[str]) -> list[str]:
    from rcm.claims.follow_up import open_follow_ups

    async def job(scope: SystemScope) -> list[str]:
        return [f"follow-ups opened: {await open_follow_ups(scope)}"]

    return await _in_practices(slugs, "claims.follow_ups", "claims follow-ups", job)


@claims.command("fetch")
@click.argument("slugs", nargs=-1)
def fetch(slugs: tuple[str, ...]) -> None:
    """Fetch the responses waiting at the claims connectors of SLUGS' enrolled payers (default: every
    practice not offboarded), keep them, acknowledge them and apply them. Prints one line per practice."""
    from rcm.kit.cli import role_database, run

    role_database(get_settings())
    for line in run(lambda: _fetch(list(slugs))):
        click.echo(line)


async def _fetch(slugs: list[str]) -> list[str]:
    from rcm.audit.events import RequestInfo
    from rcm.blobs.store import BlobStore
    from rcm.claims.responses import Practice, fetch_practice
    from rcm.config import app_database_url
    from rcm.crypto.keyring import KeyStore
    from rcm.crypto.provider import key_provider
    from rcm.identity.principal import operator_principal
    from rcm.kit.db import create_engine, platform_transaction, session_factory
    from rcm.kit.secrets import SecretResolver
    from rcm.kit.tenant import TenantId

    settings = get_settings()
    engine = create_engine(app_database_url(settings), pool_size=1, application_name="rcm-cli")
    sessions = session_factory(engine)
    try:
        async with platform_transaction(sessions) as session:
            practices = await _practices(session, slugs)
        keystore = KeyStore(key_provider(settings))
        store, resolver = BlobStore.from_settings(settings), SecretResolver(settings.secrets_dir)
        lines = []
        for tenant_id, slug in practices:
            practice = Practice(
                sessions=sessions,
                keystore=keystore,
                tenant_id=TenantId(tenant_id),
                actor=operator_principal("claims fetch"),
                request=RequestInfo(request_id="cli", trace_id=""),
            )
            report = await fetch_practice(practice, store, resolver)
            lines.append(f"{slug}: {report.summary()}")
        return lines or ["no practices"]
    finally:
        await engine.dispose()


async def _in_practices(
    slugs: list[str], job_name: str, command: str, job: Callable[[SystemScope], Awaitable[list[str]]]
) -> list[str]:
    """Run ``job`` in one system scope over SLUGS' practices (every one not offboarded without SLUGS)."""
    from rcm.audit.events import RequestInfo
    from rcm.config import app_database_url
    from rcm.crypto.keyring import KeyStore
    from rcm.crypto.provider import key_provider
    from rcm.identity.principal import operator_principal
    from rcm.kit.db import create_engine, platform_transaction, session_factory
    from rcm.kit.tenant import TenantId
    from rcm.tenancy.staff import system_scope

    settings = get_settings()
    engine = create_engine(app_database_url(settings), pool_size=1, application_name="rcm-cli")
    sessions = session_factory(engine)
    try:
        async with platform_transaction(sessions) as session:
            ids = tuple(TenantId(t) for t, _ in await _practices(session, slugs))
        async with system_scope(
            sessions,
            KeyStore(key_provider(settings)),
            job=job_name,
            tenant_ids=ids,
            actor=operator_principal(command),
            request=RequestInfo(request_id="cli", trace_id=""),
        ) as scope:
            return await job(scope)
    finally:
        await engine.dispose()


async def _practices(session: AsyncSession, slugs: list[str]) -> list[tuple[uuid.UUID, str]]:
    """(id, slug) of SLUGS' practices (each must exist), or of every practice not offboarded without."""
    from rcm.tenancy.repository import not_offboarded_tenants, tenants_by_slugs

    if not slugs:
        return await not_offboarded_tenants(session)
    found = await tenants_by_slugs(session, slugs)
    missing = sorted(set(slugs) - {t.slug for t in found})
    if missing:
        raise click.ClickException(f"no practice {', '.join(missing)}")
    return [(t.id, t.slug) for t in found]
