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
    from rcm.kit.embedded import start_embedded_postgres

    url = start_embedded_postgres(settings.data_dir / "pg")
    os.environ["RCM_DATABASE_URL"] = url
    get_settings.cache_clear()
    click.echo(f"embedded PostgreSQL running, data in {settings.data_dir / 'pg'}", err=True)
    return url


def role_database(settings: Settings, *, control: bool = False) -> Settings:
    """Settings from which the app-role (or control-role) URL resolves, without demanding the admin URL.

    ``RCM_APP_DATABASE_URL`` / ``RCM_CONTROL_DATABASE_URL`` are used as given; without them the URL is derived
    from ``RCM_DATABASE_URL``, and with neither, in dev, the embedded server is started. Anywhere else the
    missing variable is named and the command stops.
    """
    configured = settings.control_database_url if control else settings.app_database_url
    if configured is not None or settings.database_url is not None:
        return settings
    if settings.env != "dev":
        variable = "RCM_CONTROL_DATABASE_URL" if control else "RCM_APP_DATABASE_URL"
        raise click.UsageError(f"{variable} is not set (nor RCM_DATABASE_URL, from which it can be derived)")
    admin_url(settings)
    return get_settings()


def _app_password(settings: Settings) -> str | None:
    return settings.app_database_password.get_secret_value() if settings.app_database_password else None


def _control_password(settings: Settings) -> str | None:
    secret = settings.control_database_password
    return secret.get_secret_value() if secret else None


@click.group()
def main() -> None:
    """RCM: revenue-cycle management backend."""


@main.command()
def migrate() -> None:
    """Create roles and schema if missing, then run Alembic migrations to head."""
    from rcm.kit.migrations import upgrade_to_head

    settings = get_settings()
    upgrade_to_head(
        admin_url(settings),
        app_password=_app_password(settings),
        control_password=_control_password(settings),
    )
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
    """Serve the HTTP API (needs RCM_APP_DATABASE_URL and RCM_CONTROL_DATABASE_URL, not the admin URL)."""
    settings = role_database(role_database(get_settings()), control=True)
    if settings.env == "prod" and settings.database_url is not None:
        click.echo(
            "RCM_DATABASE_URL is set: the API needs only RCM_APP_DATABASE_URL and RCM_CONTROL_DATABASE_URL; "
            "keep the administrative URL to migrations and operator commands",
            err=True,
        )
    _serve(settings, host=host, port=port)


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
    upgrade_to_head(url, app_password=_app_password(settings), control_password=_control_password(settings))
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
    settings = role_database(get_settings(), control=True)
    created = run(lambda: _apply(settings, document))
    click.echo(f"{'created' if created else 'updated'} tenant {document['slug']}")


async def _apply(settings: Settings, document: dict[str, Any]) -> bool:
    from rcm.identity import audit_hooks
    from rcm.identity.principal import operator_principal
    from rcm.kit.control import open_control_sessions
    from rcm.kit.db import platform_transaction
    from rcm.kit.tenant import TenantId
    from rcm.tenancy.service import apply_manifest

    # A manifest assigns staff: a control-plane write.
    async with (
        open_control_sessions(settings, application_name="rcm-cli") as control,
        platform_transaction(control) as session,
    ):
        tenant, created = await apply_manifest(session, document)
        await audit_hooks.tenant_onboarded(
            session,
            request=audit_hooks.request_info(None),
            principal=operator_principal("tenants apply"),
            tenant_id=TenantId(tenant.id),
            created=created,
        )
    return created


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
