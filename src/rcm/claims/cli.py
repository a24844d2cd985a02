"""``rcm claims batch [SLUG...]``: group ready claims into submission batches (per practice and payer),
allocating their interchange control numbers; the operator's job, as the app role."""

from __future__ import annotations

import click

from rcm.config import get_settings


@click.group()
def claims() -> None:
    """Claims: submission batches."""


@claims.command("batch")
@click.argument("slugs", nargs=-1)
def batch(slugs: tuple[str, ...]) -> None:
    """Batch the ready claims of SLUGS (default: every active practice). Prints one line per batch."""
    from rcm.kit.cli import role_database, run

    role_database(get_settings())
    for line in run(lambda: _batch(list(slugs))):
        click.echo(line)


async def _batch(slugs: list[str]) -> list[str]:
    from rcm.audit.events import RequestInfo
    from rcm.claims.batches import build_batches
    from rcm.config import app_database_url
    from rcm.crypto.keyring import KeyStore
    from rcm.crypto.provider import key_provider
    from rcm.identity.principal import operator_principal
    from rcm.kit.db import create_engine, platform_transaction, session_factory
    from rcm.kit.tenant import TenantId
    from rcm.tenancy.repository import tenant_ids, tenants_by_slugs
    from rcm.tenancy.staff import system_scope

    settings = get_settings()
    engine = create_engine(app_database_url(settings), pool_size=1, application_name="rcm-cli")
    sessions = session_factory(engine)
    try:
        async with platform_transaction(sessions) as session:
            if slugs:
                found = await tenants_by_slugs(session, slugs)
                missing = sorted(set(slugs) - {t.slug for t in found})
                if missing:
                    raise click.ClickException(f"no practice {', '.join(missing)}")
                ids = tuple(TenantId(t.id) for t in found)
            else:
                ids = tuple(TenantId(t) for t in await tenant_ids(session, active_only=True))
        async with system_scope(
            sessions,
            KeyStore(key_provider(settings)),
            job="claims.build_batches",
            tenant_ids=ids,
            actor=operator_principal("claims batch"),
            request=RequestInfo(request_id="cli", trace_id=""),
        ) as scope:
            batches = await build_batches(scope)
            return [
                f"{b.tenant_id} {b.payer_id:<12} ISA13={b.interchange_control_number:09d} "
                f"sender={b.sender_id} claims={b.claim_count}"
                for b in batches
            ] or ["no ready claims to batch"]
    finally:
        await engine.dispose()
