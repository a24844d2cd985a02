"""``rcm remit import FILE``: post an 835 file (see ``rcm.ledger.intake``), printing a JSON summary. Exits 1
with one line when the file is not a valid 835 or every transaction set in it was received before.

``rcm remit release SLUG REMITTANCE_ID``: the operator's review of a held payment (``rcm.ledger.release``),
as the billers' route does it: ``--post`` (with ``--accept-imbalance`` when it still does not balance),
``--discard``, ``--route OTHER_SLUG`` (any active practice) or ``--unassigned`` (the unassigned-ERA queue),
with ``--reason``; prints the decision as JSON, exits 1 with one line when it is refused."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import click

from rcm.config import get_settings

if TYPE_CHECKING:
    from rcm.ledger.schemas import ReleaseCreate, ReleaseView, RemittanceImport


@click.group()
def remit() -> None:
    """Remittances (835): import and post to the ledger; review held payments."""


@remit.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_(path: Path) -> None:
    """Route each transaction set of the 835 at PATH to its practice (payee NPI/TIN), apply and post it."""
    import msgspec

    from rcm.kit.cli import role_database, run
    from rcm.ledger.intake import NotAnERA, all_duplicates

    role_database(get_settings())
    try:
        summary = run(lambda: _import(path.read_bytes()))
    except NotAnERA as exc:
        click.echo(f"refused: not a valid 835: {exc}", err=True)
        sys.exit(1)
    click.echo(msgspec.json.encode(summary).decode())
    if all_duplicates(summary):
        click.echo("refused: every transaction set in the file was received before (duplicate)", err=True)
        sys.exit(1)


@remit.command("release")
@click.argument("slug")
@click.argument("remittance_id", type=click.UUID)
@click.option("--post/--discard", "post", default=None, help="Post the held payment whole, or discard it.")
@click.option("--route", "route_to", metavar="OTHER_SLUG", help="Route it to the practice it belongs to.")
@click.option("--unassigned", is_flag=True, help="Route it to the unassigned-ERA queue.")
@click.option("--reason", required=True, help="Why (kept with the decision; no PHI).")
@click.option("--accept-imbalance", is_flag=True, help="Post it even though it still does not balance.")
def release(  # noqa: PLR0917 - click passes each option
    slug: str,
    remittance_id: uuid.UUID,
    post: bool | None,
    route_to: str | None,
    unassigned: bool,
    reason: str,
    accept_imbalance: bool,
) -> None:
    """Review the held payment REMITTANCE_ID of practice SLUG: post it whole, discard it, or route it."""
    import msgspec

    from rcm.kit.cli import role_database, run
    from rcm.kit.errors import RCMError
    from rcm.ledger.schemas import ReleaseCreate

    if [post is not None, route_to is not None, unassigned].count(True) != 1:
        raise click.UsageError("Give one of --post, --discard, --route OTHER_SLUG or --unassigned.")
    role_database(get_settings())
    action = "route" if post is None else "post" if post else "discard"
    data = ReleaseCreate(
        action=action,
        reason=reason,
        accept_imbalance=accept_imbalance,
        tenant=route_to,
        unassigned=unassigned,
    )
    try:
        decided = run(lambda: _release(slug, remittance_id, data))
    except RCMError as exc:
        click.echo(f"refused: {exc.detail}", err=True)
        sys.exit(1)
    click.echo(msgspec.json.encode(decided).decode())


async def _release(slug: str, remittance_id: uuid.UUID, data: ReleaseCreate) -> ReleaseView:
    """In one transaction over the payment's practice and the practice it is routed to (if any): a decision
    and what applying it there did commit together."""
    from rcm.audit.events import RequestInfo
    from rcm.blobs.store import BlobStore
    from rcm.config import app_database_url
    from rcm.crypto.keyring import KeyStore
    from rcm.crypto.provider import key_provider
    from rcm.identity.principal import operator_principal
    from rcm.kit.db import create_engine, platform_transaction, session_factory
    from rcm.kit.errors import NotFound
    from rcm.kit.tenant import TenantId
    from rcm.ledger.release import release as review
    from rcm.ledger.release import system_destination
    from rcm.tenancy.service import tenant_by_slug
    from rcm.tenancy.staff import one_practice, system_scope
    from rcm.tenancy.vocabulary import TenantStatus

    settings = get_settings()
    engine = create_engine(app_database_url(settings), pool_size=1, application_name="rcm-cli")
    try:
        sessions = session_factory(engine)
        async with platform_transaction(sessions) as session:
            tenant = await tenant_by_slug(session, slug)
            other = await tenant_by_slug(session, data.tenant) if data.tenant else None
        if tenant is None or tenant.status != TenantStatus.ACTIVE:
            raise NotFound
        ids = [TenantId(tenant.id)]
        if other is not None and other.status == TenantStatus.ACTIVE and other.id != tenant.id:
            ids.append(TenantId(other.id))
        keystore = KeyStore(key_provider(settings))
        async with system_scope(
            sessions,
            keystore,
            job="remit.release",
            tenant_ids=tuple(ids),
            actor=operator_principal("remit release"),
            request=RequestInfo(request_id="cli", trace_id=""),
        ) as system:
            scope = await one_practice(system, tenant.id)
            destination = await system_destination(system, data, keystore.provider)
            return await review(
                scope, BlobStore.from_settings(settings), remittance_id, data, destination=destination
            )
    finally:
        await engine.dispose()


async def _import(data: bytes) -> RemittanceImport:
    from rcm.audit.events import RequestInfo
    from rcm.blobs.store import BlobStore
    from rcm.config import app_database_url
    from rcm.crypto.keyring import KeyStore
    from rcm.crypto.provider import key_provider
    from rcm.identity.principal import operator_principal
    from rcm.kit.db import create_engine, session_factory
    from rcm.kit.secrets import SecretResolver
    from rcm.ledger.intake import import_file, read_headers

    headers = read_headers(data)  # refused before any connection is made; read once
    settings = get_settings()
    engine = create_engine(app_database_url(settings), pool_size=1, application_name="rcm-cli")
    try:
        return await import_file(
            session_factory(engine),
            KeyStore(key_provider(settings)),
            BlobStore.from_settings(settings),
            SecretResolver(settings.secrets_dir),
            data,
            actor=operator_principal("remit import"),
            request=RequestInfo(request_id="cli", trace_id=""),
            headers=headers,
        )
    finally:
        await engine.dispose()
