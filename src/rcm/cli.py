"""The ``rcm`` command: operators' and developers' entry point."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from rcm.config import Settings, get_settings

T = TypeVar("T")


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(coro_fn())  # type: ignore[arg-type]


def admin_url(settings: Settings) -> str:
    """The administrative URL; starts the embedded PostgreSQL under RCM_DATA_DIR when none is configured."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    from rcm.kit.embedded import EmbeddedPostgresUnavailable, start_embedded_postgres

    try:
        url = start_embedded_postgres(settings.data_dir / "pg")
    except EmbeddedPostgresUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    os.environ["RCM_DATABASE_URL"] = url
    get_settings.cache_clear()
    click.echo(f"embedded PostgreSQL running, data in {settings.data_dir / 'pg'}", err=True)
    return url


def _app_password(settings: Settings) -> str | None:
    return settings.app_database_password.get_secret_value() if settings.app_database_password else None


@click.group()
def main() -> None:
    """RCM: revenue-cycle management backend."""


@main.command()
def migrate() -> None:
    """Create roles and schema if missing, then run Alembic migrations to head."""
    from rcm.kit.migrations import upgrade_to_head

    settings = get_settings()
    upgrade_to_head(admin_url(settings), app_password=_app_password(settings))
    click.echo("database at head")


@main.command()
def demo() -> None:
    """Seed the demo billing company: practices, people, synthetic patients and encounters."""
    from rcm.demo import seed_demo

    settings = get_settings()
    admin_url(settings)
    summary = run(lambda: seed_demo(get_settings()))
    click.echo(summary)


@main.command()
@click.option("--host", default=None, help="Interface to bind (RCM_HOST).")
@click.option("--port", type=int, default=None, help="Port (RCM_PORT).")
def serve(host: str | None, port: int | None) -> None:
    """Serve the HTTP API."""
    settings = get_settings()
    admin_url(settings)
    _serve(get_settings(), host=host, port=port)


def _serve(settings: Settings, *, host: str | None = None, port: int | None = None) -> None:
    import uvicorn

    from rcm.app import create_app

    # No uvicorn access log: its lines carry query strings; requests are traced and audited instead.
    uvicorn.run(
        create_app(settings),
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        access_log=False,
    )


@main.command()
def dev() -> None:
    """What `make run` does: database, migrations, demo data, API and workers in one process (RCM_ENV=dev)."""
    if os.environ.setdefault("RCM_ENV", "dev") != "dev":
        raise click.UsageError(
            "`rcm dev` seeds demo data with well-known secrets: it runs only with RCM_ENV=dev"
        )
    get_settings.cache_clear()
    from rcm.demo import seed_demo
    from rcm.kit.migrations import upgrade_to_head

    settings = get_settings()
    url = admin_url(settings)
    upgrade_to_head(url, app_password=_app_password(settings))
    settings = get_settings()
    summary = run(lambda: seed_demo(settings))
    click.echo(summary)
    click.echo(
        f"\nRCM is up:\n  API        {settings.base_url}/api/v1\n  OpenAPI    {settings.base_url}/docs\n"
        f"  health     {settings.base_url}/healthz  {settings.base_url}/readyz\n"
        "  a token    .venv/bin/rcm token --user coder@demo.rcm.test   (see README, 'First tasks')\n"
    )
    from rcm.worker.cli import start_dev_worker
    from rcm.worker.runner import stop_inprocess_worker

    jobs = start_dev_worker(settings)
    try:
        _serve(settings)
    finally:
        stop_inprocess_worker(jobs)


@main.group()
def tenants() -> None:
    """Create, update and offboard tenants (client practices)."""


@tenants.command("apply")
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def tenants_apply(manifest: Path) -> None:
    """Create or update the tenant described by MANIFEST (YAML, validated against tenants/schema.json)."""
    from rcm.kit.errors import InvalidInput
    from rcm.tenancy.manifest import load_manifest

    try:
        document = load_manifest(manifest)
    except InvalidInput as exc:
        for error in exc.errors:
            click.echo(f"{manifest}: {error.pointer or '/'}: {error.detail}", err=True)
        sys.exit(2)
    settings = get_settings()
    admin_url(settings)
    created = run(lambda: _apply(get_settings(), document))
    click.echo(f"{'created' if created else 'updated'} tenant {document['slug']}")


async def _apply(settings: Settings, document: dict[str, Any]) -> bool:
    from rcm.app import app_database_url
    from rcm.identity import audit_hooks
    from rcm.identity.principal import operator_principal
    from rcm.kit.db import create_engine, platform_transaction, session_factory
    from rcm.kit.tenant import TenantId
    from rcm.tenancy.service import apply_manifest

    engine = create_engine(app_database_url(settings), pool_size=1, application_name="rcm-cli")
    try:
        async with platform_transaction(session_factory(engine)) as session:
            tenant, created = await apply_manifest(session, document)
            await audit_hooks.tenant_onboarded(
                session,
                request=audit_hooks.request_info(None),
                principal=operator_principal("tenants apply"),
                tenant_id=TenantId(tenant.id),
                created=created,
            )
        return created
    finally:
        await engine.dispose()


# Commands that live with their packages attach to the groups defined above.
from rcm.audit.cli import audit  # noqa: E402
from rcm.crypto.cli import keys, tenants_offboard  # noqa: E402
from rcm.idempotency.cli import idempotency  # noqa: E402
from rcm.identity.cli import identity, token  # noqa: E402
from rcm.worker.cli import worker  # noqa: E402

main.add_command(audit)
main.add_command(keys)
main.add_command(worker)
main.add_command(identity)
main.add_command(token)
main.add_command(idempotency)
tenants.add_command(tenants_offboard)


if __name__ == "__main__":
    main()
