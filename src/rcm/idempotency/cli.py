"""``rcm idempotency purge``: forget stored first responses once no client would retry any more."""

from __future__ import annotations

from datetime import timedelta

import click
from sqlalchemy import select

from rcm.config import get_settings


@click.group()
def idempotency() -> None:
    """Idempotency-Key records."""


@idempotency.command("purge")
@click.option("--older-than-hours", type=click.IntRange(min=1), default=72, show_default=True)
def purge(older_than_hours: int) -> None:
    """Delete stored responses older than the given age, in every tenant."""
    from rcm.cli import role_database, run

    role_database(get_settings())  # the app role's URL is all it needs
    count = run(lambda: _purge(timedelta(hours=older_than_hours)))
    click.echo(f"purged {count} idempotency record(s) older than {older_than_hours} h")


async def _purge(older_than: timedelta) -> int:
    from rcm.config import app_database_url
    from rcm.idempotency.service import purge_expired
    from rcm.kit.db import create_engine, platform_transaction, session_factory, tenant_transaction
    from rcm.kit.tenant import TenantContext, TenantId
    from rcm.tenancy.models import Tenant

    engine = create_engine(app_database_url(get_settings()), pool_size=1, application_name="rcm-cli")
    sessions = session_factory(engine)
    try:
        async with platform_transaction(sessions) as session:
            tenant_ids = tuple(TenantId(t) for t in (await session.execute(select(Tenant.id))).scalars())
        if not tenant_ids:
            return 0
        # Housekeeping over every tenant: the loudly named cross-tenant path.
        async with tenant_transaction(sessions, TenantContext.system_cross_tenant(tenant_ids)) as session:
            return await purge_expired(session, older_than=older_than)
    finally:
        await engine.dispose()
