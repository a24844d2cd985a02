"""``rcm claims batch [SLUG...]``: group ready claims into submission batches (per practice and payer),
allocating their interchange control numbers; ``rcm claims follow-ups [SLUG...]``: open follow-up items for
claims without an answer; ``rcm claims status-inquiries [SLUG...]``: ask payers about them (276/277).
Operator jobs, as the app role."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import click

from rcm.config import get_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from rcm.kit.tenant import TenantId
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
    from rcm.config import app_database_url
    from rcm.crypto.keyring import KeyStore
    from rcm.crypto.provider import key_provider
    from rcm.identity.principal import operator_principal
    from rcm.kit.db import create_engine, session_factory

    settings = get_settings()
    engine = create_engine(app_database_url(settings), pool_size=1, application_name="rcm-cli")
    sessions = session_factory(engine)
    try:
        counts = await inquire_in(
            settings,
            sessions,
            KeyStore(key_provider(settings)),
            await _practice_ids(sessions, slugs),
            actor=operator_principal("claims status-inquiries"),
            request_id="cli",
        )
    finally:
        await engine.dispose()
    return [", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "no claims due an inquiry"]


async def _practice_ids(sessions: async_sessionmaker[AsyncSession], slugs: list[str]) -> tuple[TenantId, ...]:
    """SLUGS' practices (every one not offboarded without SLUGS); an unknown slug is refused."""
    from rcm.kit.db import platform_transaction
    from rcm.kit.tenant import TenantId
    from rcm.tenancy.repository import not_offboarded_tenants, tenants_by_slugs

    async with platform_transaction(sessions) as session:
        if slugs:
            found = await tenants_by_slugs(session, slugs)
            missing = sorted(set(slugs) - {t.slug for t in found})
            if missing:
                raise click.ClickException(f"no practice {', '.join(missing)}")
            return tuple(TenantId(t.id) for t in found)
        return tuple(TenantId(t) for t, _ in await not_offboarded_tenants(session))


async def _in_practices(
    slugs: list[str], job_name: str, command: str, job: Callable[[SystemScope], Awaitable[list[str]]]
) -> list[str]:
    """Run ``job`` in one system scope over SLUGS' practices (every one not offboarded without SLUGS)."""
    from rcm.audit.events import RequestInfo
    from rcm.config import app_database_url
    from rcm.crypto.keyring import KeyStore
    from rcm.crypto.provider import key_provider
    from rcm.identity.principal import operator_principal
    from rcm.kit.db import create_engine, session_factory
    from rcm.tenancy.staff import system_scope

    settings = get_settings()
    engine = create_engine(app_database_url(settings), pool_size=1, application_name="rcm-cli")
    sessions = session_factory(engine)
    try:
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
    finally:
        await engine.dispose()
