"""``rcm audit``: verify the access log and write signed checkpoints (operators and compliance staff)."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import click

from rcm.config import Settings, get_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


@click.group()
def audit() -> None:
    """HIPAA access log: integrity verification and signed checkpoints."""


@audit.command("verify")
@click.option("--tenant", "slug", default=None, help="Verify only this tenant (slug); default: every tenant.")
def verify_command(slug: str | None) -> None:
    """Verify every tenant's hash chain, chain head and signed checkpoints against the external copy
    (RCM_AUDIT_ANCHOR_DIR). Exit 1 on any problem."""
    settings = _ready_settings()
    report_ok, lines = asyncio.run(_verify(settings, slug))
    for line in lines:
        click.echo(line)
    sys.exit(0 if report_ok else 1)


@audit.command("checkpoint")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also append every tenant's checkpoints, as JSON lines, to this file (for audit/verify_export.py).",
)
def checkpoint_command(out: Path | None) -> None:
    """Seal pending events, sign each tenant's new chain head with the checkpoint key (created under
    RCM_DATA_DIR in dev), copy the checkpoints to RCM_AUDIT_ANCHOR_DIR and create the coming months' audit
    partitions (as role rcm_audit). The worker's scheduler does the same every few seconds."""
    settings = _ready_settings()
    written, public_key, documents = asyncio.run(_checkpoint(settings))
    click.echo(f"{written} checkpoint(s) written; public key for auditors: {public_key}")
    if out is not None:
        with out.open("a", encoding="utf-8") as handle:
            for document in documents:
                handle.write(json.dumps(document, sort_keys=True) + "\n")
        click.echo(f"{len(documents)} checkpoint(s) appended to {out}")


def _ready_settings() -> Settings:
    from rcm.kit.cli import admin_url

    admin_url(get_settings())  # starts the embedded server in dev when no database is configured
    return get_settings()


async def _system_context(session: AsyncSession, slug: str | None) -> tuple[uuid.UUID, ...]:
    """Every tenant's id plus the platform's (or one tenant's): the audit CLI's loudly cross-tenant scope."""
    from rcm.kit.tenant import PLATFORM_TENANT
    from rcm.tenancy.repository import tenant_by_slug, tenant_ids

    if slug is not None:
        found = await tenant_by_slug(session, slug)
        if found is None:
            raise click.ClickException(f"no tenant with slug {slug}")
        return (found.id,)
    return (PLATFORM_TENANT, *await tenant_ids(session))


async def _verify(settings: Settings, slug: str | None) -> tuple[bool, list[str]]:
    from rcm.audit.anchors import anchor_store, read_anchors
    from rcm.audit.checkpoints import key_directory, public_keys_in
    from rcm.audit.service import verify
    from rcm.audit.verification import vanished_tenants
    from rcm.config import app_database_url
    from rcm.kit.db import create_engine, platform_transaction, session_factory, tenant_transaction
    from rcm.kit.tenant import TenantContext, TenantId

    store = anchor_store(settings)
    anchors = read_anchors(store) if store is not None else {}
    engine = create_engine(app_database_url(settings), pool_size=1, application_name="rcm-audit")
    try:
        sessions = session_factory(engine)
        async with platform_transaction(sessions) as session:
            registered = await _system_context(session, slug)
        # A tenant the anchor store knows but the database no longer lists is verified too: its chain
        # vanished with it, and that is exactly what must be reported.
        missing = vanished_tenants(anchors, registered) if slug is None else []
        tenant_ids = (*registered, *missing)
        # Cross-tenant on purpose: integrity is checked for every tenant, the platform's own chain included.
        context = TenantContext.system_cross_tenant(tuple(TenantId(t) for t in tenant_ids))
        async with tenant_transaction(sessions, context) as session:
            report = await verify(
                session, tenant_ids, public_keys=public_keys_in(key_directory(settings)), anchors=anchors
            )
    finally:
        await engine.dispose()
    if store is None:
        report.global_problems.append(
            f"no external checkpoint copy at {settings.anchor_dir} (RCM_AUDIT_ANCHOR_DIR): "
            "nothing to compare the database with"
        )
    lines = [f"DATABASE: {problem}" for problem in report.global_problems]
    for tenant in report.tenants:
        status = "ok" if tenant.ok else "TAMPERED"
        registered_note = " NOT REGISTERED IN THE DATABASE" if tenant.tenant_id in missing else ""
        lines.append(
            f"{tenant.tenant_id}{registered_note}: {status} ({tenant.events} events, {tenant.unsealed} "
            f"not sealed yet, head {tenant.head_seq}, {tenant.checkpoints} checkpoints, "
            f"{tenant.anchors} anchored)"
        )
        lines.extend(f"  seq {p.seq}: {p.kind}: {p.detail}" for p in tenant.problems)
    lines.append("audit log intact" if report.ok else "AUDIT LOG INTEGRITY PROBLEMS FOUND")
    return report.ok, lines


async def _checkpoint(settings: Settings) -> tuple[int, Path, list[dict[str, object]]]:
    from rcm.audit import repository
    from rcm.audit.anchors import anchor_store
    from rcm.audit.chainer import all_tenants_context, republish_latest, run_chainer
    from rcm.audit.checkpoints import checkpoint_document, key_directory, load_signer
    from rcm.audit.partitions import ensure_partitions
    from rcm.config import audit_database_url
    from rcm.kit.db import create_engine, session_factory, tenant_transaction

    signer = load_signer(key_directory(settings), create=settings.env != "prod")
    store = anchor_store(settings, create=True)
    engine = create_engine(audit_database_url(settings), pool_size=1, application_name="rcm-audit")
    try:
        sessions = session_factory(engine)
        async with sessions() as session, session.begin():
            await ensure_partitions(session)  # ahead of the clock, so the DEFAULT partition stays empty
        if store is not None:
            await republish_latest(sessions, store)
        run = await run_chainer(sessions, signer, store, every_events=None, every_seconds=None)
        async with sessions() as session, session.begin():
            context = await all_tenants_context(session)
        async with tenant_transaction(sessions, context) as session:
            documents = [
                checkpoint_document(row) for row in await repository.checkpoints(session, context.tenant_ids)
            ]
    finally:
        await engine.dispose()
    return len(run.checkpoints), key_directory(settings) / f"{signer.key_id}.pub.pem", documents
