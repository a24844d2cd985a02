"""``rcm claims batch [--render] [SLUG...]``: group ready claims into submission batches (per practice and
payer), allocating their interchange control numbers, and with ``--render`` write and keep each new batch's
837 (each in its own transaction: a batch whose practice lacks what an 837 needs stays built, unrendered,
and the reason is printed); ``rcm claims follow-ups [SLUG...]``: open follow-up items for claims without an
answer from payers with no status service; ``rcm claims status-inquiries [SLUG...]``: ask the others about
them (276/277); ``rcm claims fetch [SLUG...]``: fetch the payers' responses (999, 277CA, 835) and apply them.
Operator jobs, as the app role."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import click

from rcm.config import get_settings

if TYPE_CHECKING:
    import uuid

    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from rcm.claims.models import SubmissionBatch
    from rcm.kit.tenant import TenantId
    from rcm.tenancy.scope import SystemScope


@click.group()
def claims() -> None:
    """Claims: submission batches and follow-ups."""


@claims.command("batch")
@click.option("--render", is_flag=True, help="Also write and keep each new batch's 837 (not sent).")
@click.argument("slugs", nargs=-1)
def batch(slugs: tuple[str, ...], render: bool) -> None:
    """Batch the ready claims of SLUGS (default: every practice not offboarded). Prints one line per batch
    (and with --render one line per rendered file, or why it was not rendered)."""
    from rcm.kit.cli import role_database, run

    role_database(get_settings())
    for line in run(lambda: _batch(list(slugs), render=render)):
        click.echo(line)


async def _batch(slugs: list[str], *, render: bool = False) -> list[str]:
    from rcm.claims.batches import build_batches

    built: list[SubmissionBatch] = []

    async def job(scope: SystemScope) -> list[str]:
        batches = await build_batches(scope)
        built.extend(batches)
        return [
            f"{b.tenant_id} {b.payer_id:<12} ISA13={b.interchange_control_number:09d} "
            f"sender={b.sender_id} claims={b.claim_count}"
            for b in batches
        ] or ["no ready claims to batch"]

    lines = await _in_practices(slugs, "claims.build_batches", "claims batch", job)
    if render and built:
        lines += await _render(built)
    return lines


async def _render(batches: list[SubmissionBatch]) -> list[str]:
    """Render each batch in a transaction of its own practice (a refusal names what is missing)."""
    from rcm.audit.events import RequestInfo
    from rcm.blobs.store import BlobStore
    from rcm.claims.rendering import render_batch
    from rcm.crypto.keyring import KeyStore
    from rcm.crypto.provider import key_provider
    from rcm.identity.principal import operator_principal
    from rcm.kit.errors import RCMError
    from rcm.kit.tenant import TenantId
    from rcm.tenancy.jobs import job_tenant_scope

    settings = get_settings()
    store = BlobStore.from_settings(settings)
    keystore = KeyStore(key_provider(settings))
    lines = []
    async with _sessions() as sessions:
        for b in batches:
            try:
                async with job_tenant_scope(
                    sessions,
                    keystore,
                    TenantId(b.tenant_id),
                    actor=operator_principal("claims batch --render"),
                    request=RequestInfo(request_id="cli", trace_id=""),
                    job="claims.render_batch",
                ) as scope:
                    row = await render_batch(scope, store, b.id)
            except RCMError as exc:
                named = "; ".join(f"{e.pointer} {e.detail}" for e in exc.errors)
                lines.append(f"{b.id} not rendered: {exc.detail} {named}".rstrip())
            else:
                lines.append(f"{b.id} rendered {row.kind} file={row.id} bytes={row.size}")
    return lines


@claims.command("follow-ups")
@click.argument("slugs", nargs=-1)
def follow_ups(slugs: tuple[str, ...]) -> None:
    """Open a billing-queue follow-up for each claim without an answer past its payer's status-inquiry
    days, of payers with no electronic status service (the others are asked by ``status-inquiries``), in
    SLUGS (default: every practice not offboarded)."""
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
    from rcm.crypto.keyring import KeyStore
    from rcm.crypto.provider import key_provider
    from rcm.identity.principal import operator_principal
    from rcm.kit.db import platform_transaction
    from rcm.kit.secrets import SecretResolver
    from rcm.kit.tenant import TenantId

    settings = get_settings()
    async with _sessions() as sessions:
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


@claims.command("status-inquiries")
@click.argument("slugs", nargs=-1)
def status_inquiries(slugs: tuple[str, ...]) -> None:
    """Ask payers (276) about claims without an answer past their status-inquiry days, in SLUGS (default:
    every practice not offboarded), and apply the 277s. Prints the outcome counts."""
    from rcm.kit.cli import role_database, run

    role_database(get_settings())
    for line in run(lambda: _status_inquiries(list(slugs))):
        click.echo(line)


async def _status_inquiries(slugs: list[str]) -> list[str]:
    from rcm.claims.status_jobs import inquire_in
    from rcm.crypto.keyring import KeyStore
    from rcm.crypto.provider import key_provider
    from rcm.identity.principal import operator_principal

    settings = get_settings()
    async with _sessions() as sessions:
        counts = await inquire_in(
            settings,
            sessions,
            KeyStore(key_provider(settings)),
            await _practice_ids(sessions, slugs),
            actor=operator_principal("claims status-inquiries"),
            request_id="cli",
        )
    return [", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "no claims due an inquiry"]


async def _practice_ids(sessions: async_sessionmaker[AsyncSession], slugs: list[str]) -> tuple[TenantId, ...]:
    """SLUGS' practices (every one not offboarded without SLUGS); an unknown slug is refused."""
    from rcm.kit.db import platform_transaction
    from rcm.kit.tenant import TenantId

    async with platform_transaction(sessions) as session:
        return tuple(TenantId(t) for t, _ in await _practices(session, slugs))


async def _in_practices(
    slugs: list[str], job_name: str, command: str, job: Callable[[SystemScope], Awaitable[list[str]]]
) -> list[str]:
    """Run ``job`` in one system scope over SLUGS' practices (every one not offboarded without SLUGS)."""
    from rcm.audit.events import RequestInfo
    from rcm.crypto.keyring import KeyStore
    from rcm.crypto.provider import key_provider
    from rcm.identity.principal import operator_principal
    from rcm.tenancy.staff import system_scope

    settings = get_settings()
    async with _sessions() as sessions:
        ids = await _practice_ids(sessions, slugs)
        async with system_scope(
            sessions,
            KeyStore(key_provider(settings)),
            job=job_name,
            tenant_ids=ids,
            actor=operator_principal(command),
            request=RequestInfo(request_id="cli", trace_id=""),
        ) as scope:
            return await job(scope)


@asynccontextmanager
async def _sessions() -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions of the app role on a one-connection engine, disposed after the command."""
    from rcm.config import app_database_url
    from rcm.kit.db import create_engine, session_factory

    engine = create_engine(app_database_url(get_settings()), pool_size=1, application_name="rcm-cli")
    try:
        yield session_factory(engine)
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
