"""``rcm identity ...`` and ``rcm token``: signing keys, API clients, and dev tokens from the command line.

The integrator places these in the final command tree (``main.add_command``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.config import Settings, get_settings, require_dev_env
from rcm.identity.principal import Role

T = TypeVar("T")


def _run(fn: Callable[[Settings, async_sessionmaker[AsyncSession]], Awaitable[T]]) -> T:
    """Run an operator command on control-role sessions: signing keys, API clients and a person's first
    login are control-plane writes (``rcm.kit.control``)."""
    from rcm.kit.cli import role_database, run
    from rcm.kit.control import open_control_sessions

    settings = role_database(get_settings(), control=True)

    async def go() -> T:
        async with open_control_sessions(settings, application_name="rcm-cli") as sessions:
            return await fn(settings, sessions)

    return run(go)


@click.group("identity")
def identity() -> None:
    """Signing keys and practice API clients."""


@identity.command("rotate-signing-key")
def rotate_signing_key_cmd() -> None:
    """Make a new access-token signing key active; the old one stays in the JWKS until its tokens expire."""
    from rcm.audit.events import Action
    from rcm.identity import audit_hooks
    from rcm.identity.keys import rotate_signing_key
    from rcm.identity.principal import operator_principal
    from rcm.kit.db import platform_transaction

    async def go(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> str:
        async with platform_transaction(sessions) as session:
            row = await rotate_signing_key(session, settings)
            await audit_hooks.admin_action(
                session,
                request=audit_hooks.request_info(None),
                principal=operator_principal("identity rotate-signing-key"),
                event_type="signing_key.rotate",
                action=Action.EXECUTE,
                detail={"kid": row.kid},
            )
        return row.kid

    click.echo(f"active signing key is now {_run(go)}")


@identity.group("clients")
def clients() -> None:
    """Issue, rotate and revoke a practice's API client credentials."""


def _print_client(client: Any, secret: str | None) -> None:
    out = {
        "client_id": client.client_id,
        "tenant_id": str(client.tenant_id),
        "auth_method": client.auth_method,
        "scopes": list(client.scopes),
        "status": client.status,
    }
    if secret:
        out["client_secret"] = secret
    click.echo(json.dumps(out, indent=2))
    if secret:
        click.echo("The secret is shown once; store it now.", err=True)


async def _audit_client(session: AsyncSession, change: str, client: Any) -> None:
    """The CLI's client changes are recorded like the admin API's, in the same transaction."""
    from rcm.identity import audit_hooks
    from rcm.identity.principal import operator_principal
    from rcm.kit.tenant import TenantId

    await audit_hooks.api_client_changed(
        session,
        request=audit_hooks.request_info(None),
        principal=operator_principal(f"identity clients {change}"),
        change=change,
        tenant_id=TenantId(client.tenant_id),
        client_row_id=client.id,
    )


async def _tenant_id(session: AsyncSession, slug: str) -> Any:
    from rcm.kit.tenant import TenantId
    from rcm.tenancy.service import tenant_by_slug

    tenant = await tenant_by_slug(session, slug)
    if tenant is None:
        click.echo(f"no tenant with slug {slug}", err=True)
        sys.exit(2)
    return TenantId(tenant.id)


@clients.command("create")
@click.argument("tenant_slug")
@click.option("--name", required=True)
@click.option(
    "--auth-method",
    type=click.Choice(["client_secret_basic", "private_key_jwt"]),
    default="client_secret_basic",
)
@click.option("--scope", "scopes", multiple=True, help="Repeat; default: the practice client scopes.")
@click.option("--jwks-file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def clients_create(
    tenant_slug: str, name: str, auth_method: str, scopes: tuple[str, ...], jwks_file: Path | None
) -> None:
    """Register an API client for TENANT_SLUG and print its credentials."""
    from rcm.identity.clients import create_client
    from rcm.kit.db import platform_transaction

    jwks = json.loads(jwks_file.read_text()) if jwks_file else None

    async def go(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> None:
        async with platform_transaction(sessions) as session:
            issued = await create_client(
                session,
                await _tenant_id(session, tenant_slug),
                name=name,
                auth_method=auth_method,
                scopes=list(scopes) or None,
                jwks=jwks,
            )
            await _audit_client(session, "issue", issued.client)
        _print_client(issued.client, issued.secret)

    _run(go)


@clients.command("rotate")
@click.argument("tenant_slug")
@click.argument("client_id")
@click.option("--jwks-file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def clients_rotate(tenant_slug: str, client_id: str, jwks_file: Path | None) -> None:
    """New secret (or new JWKS for private_key_jwt clients); the old credential stops working at once."""
    from rcm.identity.clients import rotate_client_secret
    from rcm.kit.db import platform_transaction

    jwks = json.loads(jwks_file.read_text()) if jwks_file else None

    async def go(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> None:
        async with platform_transaction(sessions) as session:
            issued = await rotate_client_secret(
                session, await _tenant_id(session, tenant_slug), client_id, jwks=jwks
            )
            await _audit_client(session, "rotate", issued.client)
        _print_client(issued.client, issued.secret)

    _run(go)


@clients.command("revoke")
@click.argument("tenant_slug")
@click.argument("client_id")
def clients_revoke(tenant_slug: str, client_id: str) -> None:
    """Revoke a client: no new tokens; its issued ones stop working within the status TTL (seconds)."""
    from rcm.identity.clients import revoke_client
    from rcm.kit.db import platform_transaction

    async def go(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> None:
        async with platform_transaction(sessions) as session:
            client = await revoke_client(session, await _tenant_id(session, tenant_slug), client_id)
            await _audit_client(session, "revoke", client)
        _print_client(client, None)

    _run(go)


@identity.group("people")
def people() -> None:
    """People who log in through a trusted OIDC issuer (the admin API manages them once an admin exists)."""


@people.command("add")
@click.argument("email")
@click.option("--name", "display_name", required=True, help="How the person is shown.")
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    type=click.Choice(sorted(r.value for r in Role if r is not Role.PRACTICE_CLIENT)),
    help="Repeat for several roles.",
)
@click.option(
    "--issuer", default=None, help="The trusted issuer they log in through (default: the only one)."
)
@click.option("--home-tenant", default=None, help="A practice owner's practice (slug).")
def people_add(
    email: str, display_name: str, roles: tuple[str, ...], issuer: str | None, home_tenant: str | None
) -> None:
    """Add a person, e.g. the first admin; they are matched by their verified email at first login."""
    import msgspec

    from rcm.audit.events import Action
    from rcm.identity import audit_hooks
    from rcm.identity.admin_people import PersonCreate, create_person
    from rcm.identity.principal import operator_principal
    from rcm.kit.db import platform_transaction
    from rcm.kit.errors import RCMError

    fields = {"email": email, "display_name": display_name, "roles": list(roles)}
    fields |= {"issuer": issuer} if issuer else {}
    fields |= {"home_tenant": home_tenant} if home_tenant else {}
    try:
        data = msgspec.convert(fields, PersonCreate)
    except msgspec.ValidationError as exc:
        raise click.UsageError(str(exc)) from None

    async def go(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
        async with platform_transaction(sessions) as session:
            person, created = await create_person(session, settings, data)
            if created:
                await audit_hooks.admin_action(
                    session,
                    request=audit_hooks.request_info(None),
                    principal=operator_principal("identity people add"),
                    event_type="person.create",
                    action=Action.CREATE,
                    resource_type="app_user",
                    resource_ids=(person.id,),
                    detail={"roles": ",".join(person.roles)},
                )
        return {"id": str(person.id), "email": person.email, "roles": person.roles, "created": created}

    try:
        click.echo(json.dumps(_run(go), indent=2))
    except RCMError as exc:
        for error in exc.errors:
            click.echo(f"{error.pointer}: {error.detail}", err=True)
        click.echo(exc.detail, err=True)
        sys.exit(2)


@click.command("token")
@click.option("--user", "email", help="DEV ONLY: log in as this person through the built-in dev issuer.")
@click.option("--mfa", is_flag=True, help="With --user: the dev ID token claims a second factor.")
@click.option("--client", "client_id", help="An API client id (client_credentials).")
@click.option("--secret", help="The API client's secret.")
@click.option("--scope", default=None, help="Space-separated scopes to narrow the token to.")
def token(email: str | None, mfa: bool, client_id: str | None, secret: str | None, scope: str | None) -> None:
    """Print an access token, through the same grant code as POST /oauth/token (in-process, no HTTP)."""
    if bool(email) == bool(client_id) or (client_id and not secret):
        raise click.UsageError("use either --user EMAIL [--mfa] or --client ID --secret SECRET")
    if email:
        # The dev issuer logs anyone in without a password: refused before any database work outside dev.
        require_dev_env(get_settings(), "rcm token --user")
    result = _run(
        lambda settings, sessions: exchange_in_process(
            settings, sessions, email=email, mfa=mfa, client_id=client_id, secret=secret, scope=scope
        )
    )
    if result.status != 200:
        click.echo(json.dumps(result.body), err=True)
        sys.exit(1)
    click.echo(result.body["access_token"])


async def exchange_in_process(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    *,
    email: str | None = None,
    mfa: bool = False,
    client_id: str | None = None,
    secret: str | None = None,
    scope: str | None = None,
) -> Any:
    """What ``rcm token`` does: build the token request and run it through ``TokenService``."""
    import base64

    from rcm.identity import audit_hooks
    from rcm.identity.keys import KeyRing
    from rcm.identity.oidc import mint_dev_id_token
    from rcm.identity.server import JWT_BEARER, TokenService

    headers: dict[str, str] = {}
    if email:
        form = {"grant_type": JWT_BEARER, "assertion": mint_dev_id_token(settings, email=email, mfa=mfa)}
    else:
        form = {"grant_type": "client_credentials"}
        headers["Authorization"] = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    if scope:
        form["scope"] = scope
    # The CLI holds control-role sessions: they read like the app's, and may create the first signing key
    # and link a person's subject on first login.
    service = TokenService(settings, KeyRing(settings, control=sessions))
    return await service.exchange(
        sessions, form, headers, request=audit_hooks.request_info(None), control=sessions
    )
