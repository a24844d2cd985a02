"""``rcm idempotency purge``: forget stored first responses once no client would retry any more."""

from __future__ import annotations

from datetime import timedelta

import click

from rcm.config import get_settings


@click.group()
def idempotency() -> None:
    """Idempotency-Key records."""


@idempotency.command("purge")
@click.option(
    "--older-than-hours",
    type=click.IntRange(min=1),
    default=None,
    help="Default: RCM_IDEMPOTENCY_RETENTION_HOURS.",
)
def purge(older_than_hours: int | None) -> None:
    """Delete stored responses older than the given age, in every tenant (the worker's scheduler does this
    hourly)."""
    older_than_hours = older_than_hours or get_settings().idempotency_retention_hours
    from rcm.kit.cli import role_database, run

    role_database(get_settings())  # the app role's URL is all it needs
    count = run(lambda: _purge(timedelta(hours=older_than_hours)))
    click.echo(f"purged {count} idempotency record(s) older than {older_than_hours} h")


async def _purge(older_than: timedelta) -> int:
    from rcm.config import app_database_url
    from rcm.idempotency.jobs import purge_all_tenants
    from rcm.kit.db import create_engine, session_factory

    engine = create_engine(app_database_url(get_settings()), pool_size=1, application_name="rcm-cli")
    try:
        return await purge_all_tenants(session_factory(engine), older_than=older_than)
    finally:
        await engine.dispose()
