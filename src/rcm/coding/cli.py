"""``rcm coding fees SLUG FILE.csv``: load a practice's fee schedule (code,modifier,charge_cents)."""

from __future__ import annotations

from pathlib import Path

import click

from rcm.config import get_settings


@click.group()
def coding() -> None:
    """The coding queue: fee schedules."""


@coding.command("fees")
@click.argument("slug")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def fees(slug: str, file: Path) -> None:
    """Replace SLUG's loaded fee schedule with FILE (a header row code,modifier,charge_cents; cents)."""
    from rcm.coding.fees import parse_csv
    from rcm.kit.cli import role_database, run
    from rcm.kit.errors import InvalidInput

    try:
        entries = parse_csv(file.read_text(encoding="utf-8"))
    except InvalidInput as exc:
        for error in exc.errors:
            click.echo(f"{file}: {error.pointer}: {error.detail}", err=True)
        raise SystemExit(1) from None
    role_database(get_settings())
    count = run(lambda: _load(slug, entries))
    click.echo(f"{slug}: {count} fee schedule entr{'y' if count == 1 else 'ies'} loaded")


async def _load(slug: str, entries: list[tuple[str, str, int]]) -> int:
    from rcm.audit.events import RequestInfo
    from rcm.coding.fees import load
    from rcm.config import app_database_url
    from rcm.crypto.keyring import KeyStore
    from rcm.crypto.provider import key_provider
    from rcm.identity.principal import operator_principal
    from rcm.kit.db import create_engine, platform_transaction, session_factory
    from rcm.kit.tenant import TenantId
    from rcm.tenancy.repository import tenant_by_slug
    from rcm.tenancy.staff import system_scope

    settings = get_settings()
    engine = create_engine(app_database_url(settings), pool_size=1, application_name="rcm-cli")
    sessions = session_factory(engine)
    try:
        async with platform_transaction(sessions) as session:
            tenant = await tenant_by_slug(session, slug)
        if tenant is None:
            raise click.ClickException(f"no practice {slug!r}")
        async with system_scope(
            sessions,
            KeyStore(key_provider(settings)),
            job="coding.fees",
            tenant_ids=(TenantId(tenant.id),),
            actor=operator_principal("coding fees"),
            request=RequestInfo(request_id="cli", trace_id=""),
        ) as scope:
            return await load(scope, entries)
    finally:
        await engine.dispose()
