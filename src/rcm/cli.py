"""The ``rcm`` command: operators' and developers' entry point."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
from pydantic import ValidationError

from rcm.config import SettingError, Settings, describe_invalid_settings, get_settings, require_dev_env
from rcm.kit.cli import admin_url, app_password, control_password, role_database, run

if TYPE_CHECKING:
    from rcm.tenancy.manifest import TenantManifest


class _Commands(click.Group):
    """The command tree; a bad or missing setting anywhere below ends in one line on stderr, exit status 2.

    A newcomer who mistypes RCM_PORT should read which variable is wrong, not a pydantic traceback.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ValidationError as exc:
            if exc.title != Settings.__name__:
                raise
            _fail(describe_invalid_settings(exc))
        except SettingError as exc:
            _fail(str(exc))


def _fail(message: str) -> NoReturn:
    click.echo(f"rcm: {' '.join(message.split())}", err=True)
    sys.exit(2)


@click.group(cls=_Commands)
def main() -> None:
    """RCM: revenue-cycle management backend."""


@main.command()
def migrate() -> None:
    """Create roles and schema if missing, then run Alembic migrations to head."""
    from rcm.kit.migrations import upgrade_to_head

    settings = get_settings()
    upgrade_to_head(
        admin_url(settings),
        app_password=app_password(settings),
        control_password=control_password(settings),
    )
    click.echo("database at head")


@main.command()
def demo() -> None:
    """Seed the demo billing company: practices, people, synthetic patients and encounters."""
    from rcm.demo import seed_demo

    settings = get_settings()
    require_dev_env(settings, "rcm demo")
    admin_url(settings)
    summary = run(lambda: seed_demo(get_settings()))
    click.echo(summary)


@main.command()
@click.option("--host", default=None, help="Interface to bind (RCM_HOST).")
@click.option("--port", type=int, default=None, help="Port (RCM_PORT).")
def serve(host: str | None, port: int | None) -> None:
    """Serve the HTTP API (needs RCM_APP_DATABASE_URL and RCM_CONTROL_DATABASE_URL, not the admin URL)."""
    # The options are the variables by another name, so the issuer and the banner follow them too.
    if host is not None:
        os.environ["RCM_HOST"] = host
    if port is not None:
        os.environ["RCM_PORT"] = str(port)
    get_settings.cache_clear()
    settings = role_database(role_database(get_settings()), control=True)
    if settings.env == "prod" and settings.database_url is not None:
        click.echo(
            "RCM_DATABASE_URL is set: the API needs only RCM_APP_DATABASE_URL and RCM_CONTROL_DATABASE_URL; "
            "keep the administrative URL to migrations and operator commands",
            err=True,
        )
    _serve(settings)


def banner(settings: Settings, *, dev: bool = False) -> str:
    """What a newcomer reads once the API answers: where everything is, under the public base URL."""
    base = settings.base_url
    lines = [
        f"RCM is up at {base} (listening on {settings.host}:{settings.port}):",
        f"  API        {base}/api/v1",
        f"  OpenAPI    {base}/docs   (JSON: {base}/docs/openapi.json)",
        f"  health     {base}/healthz  {base}/readyz",
    ]
    if dev:
        lines.append(
            "  a token    .venv/bin/rcm token --user coder@demo.rcm.test   (see README, 'First tasks')"
        )
    return "\n".join(lines) + "\n"


def _listen_socket(settings: Settings) -> socket.socket:
    """Bind the port before the app starts, so a taken port is one clear line, not a log record later.

    Only bound here: uvicorn starts listening after the app's startup, so no connection is accepted early.
    """
    host = settings.host
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, settings.port))
    except OSError as exc:
        sock.close()
        raise SettingError(
            "RCM_PORT",
            f"cannot listen on {host}:{settings.port} ({exc.strerror or exc}); set RCM_PORT/RCM_HOST",
        ) from None
    sock.set_inheritable(True)
    return sock


def _serve(settings: Settings, *, dev: bool = False) -> None:
    import uvicorn

    from rcm.app import create_app
    from rcm.surface import server_config

    class AnnouncingServer(uvicorn.Server):
        """Prints the banner from the server-started point: after the app's startup and the listen call,
        so "up" is only ever said of a port that accepts connections."""

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                click.echo(banner(settings, dev=dev))

    sock = _listen_socket(settings)
    config = server_config(create_app(settings), host=settings.host, port=settings.port)
    try:
        AnnouncingServer(config).run(sockets=[sock])
    finally:
        sock.close()


DEMO_SECRETS = {
    "DEMO_TIN_SUNRISE": "12-3456789",
    "DEMO_TIN_SUMMIT": "98-7654321",
    "DEMO_TIN_LAKESIDE": "11-2223333",
    "DEMO_TIN_RIVERSIDE": "22-3334444",
    "DEMO_CLEARINGHOUSE_SUNRISE": "demo-sandbox-credential",
}


@main.command()
def dev() -> None:
    """What `make run` does: database, migrations, demo data, API and workers in one process (RCM_ENV=dev)."""
    # Demo data comes with well-known secrets: asked for explicitly (`make run` sets it), never by default.
    require_dev_env(get_settings(), "rcm dev", allow_test=False)
    from rcm.demo import seed_demo
    from rcm.kit.migrations import upgrade_to_head

    settings = get_settings()
    url = admin_url(settings)
    upgrade_to_head(url, app_password=app_password(settings), control_password=control_password(settings))
    settings = get_settings()
    # The demo manifests name their TINs and the sandbox clearinghouse's credential by reference: invented
    # values for the demo unless the environment gives others (DEV ONLY; never a real TIN in a demo).
    for name, value in DEMO_SECRETS.items():
        os.environ.setdefault(name, value)
    from rcm.demo_cycle import demo_payer_rules

    demo_payer_rules(settings)  # the sandbox payer pays, partially pays and denies by procedure
    summary = run(lambda: seed_demo(settings))
    click.echo(summary)
    from rcm.worker.cli import start_dev_worker, start_scheduler
    from rcm.worker.runner import stop_inprocess_worker

    jobs = start_dev_worker(settings)
    periodic = start_scheduler(settings)  # the audit chainer seals and anchors every few seconds
    try:
        _serve(settings, dev=True)
    finally:
        periodic.stop()
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
    try:
        created = run(lambda: _apply(settings, document))
    except InvalidInput as exc:  # a payer the directory lacks, named by its pointer
        for error in exc.errors:
            click.echo(f"{manifest}: {error.pointer or '/'}: {error.detail}", err=True)
        sys.exit(2)
    click.echo(f"{'created' if created else 'updated'} tenant {document.slug}")


@tenants.command("schema")
def tenants_schema() -> None:
    """Print the JSON Schema of tenant manifests, generated from the model (> tenants/schema.json)."""
    from rcm.tenancy.manifest import render_schema

    click.echo(render_schema(), nl=False)


async def _apply(settings: Settings, document: TenantManifest) -> bool:
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
from rcm.claims.cli import claims  # noqa: E402
from rcm.codes.cli import codes  # noqa: E402
from rcm.coding.cli import coding  # noqa: E402
from rcm.crypto.cli import keys, tenants_offboard  # noqa: E402
from rcm.idempotency.cli import idempotency  # noqa: E402
from rcm.identity.cli import identity, token  # noqa: E402
from rcm.ledger.cli import remit  # noqa: E402
from rcm.payers.cli import payers  # noqa: E402
from rcm.worker.cli import worker  # noqa: E402
from rcm.x12.cli import x12  # noqa: E402

main.add_command(audit)
main.add_command(x12)
main.add_command(codes)
main.add_command(payers)
main.add_command(claims)
main.add_command(remit)
main.add_command(coding)
main.add_command(keys)
main.add_command(worker)
main.add_command(identity)
main.add_command(token)
main.add_command(idempotency)
tenants.add_command(tenants_offboard)


if __name__ == "__main__":
    main()
