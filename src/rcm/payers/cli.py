"""``rcm payers load [FILE]`` and ``rcm payers list``: the operator keeps the payer directory current.

Loads run with the administrative URL, as the owner role (the app role only reads the directory)."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.group()
def payers() -> None:
    """The payer directory: payer ids, names, connectors per service, follow-up and filing limits."""


@payers.command("load")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def load(file: Path | None) -> None:
    """Load the payer directory from FILE (default: the shipped demo directory). Idempotent: a reload
    updates changed payers and never removes one (enrollments and claims refer to them)."""
    from rcm.config import get_settings
    from rcm.kit.cli import admin_url, run
    from rcm.kit.errors import InvalidInput
    from rcm.payers.service import load_directory

    url = admin_url(get_settings())
    try:
        change = run(lambda: load_directory(url, file))
    except InvalidInput as exc:
        for error in exc.errors:
            click.echo(f"{file or 'directory'}: {error.pointer or '/'}: {error.detail}", err=True)
        if not exc.errors:
            click.echo(f"rcm: {exc.detail}", err=True)
        sys.exit(2)
    click.echo(f"payers: +{change.added} ~{change.changed} ={change.unchanged}")


@payers.command("list")
def list_() -> None:
    """List the directory: id, filing indicator, claims connector, status inquiry days, name."""
    from rcm.config import get_settings
    from rcm.kit.cli import admin_url, run

    url = admin_url(get_settings())
    for line in run(lambda: _lines(url)):
        click.echo(line)


async def _lines(url: str) -> list[str]:
    from rcm.kit.db import create_engine, platform_transaction, session_factory
    from rcm.payers.repository import directory_payers

    engine = create_engine(url, pool_size=1, application_name="rcm-payers")
    try:
        async with platform_transaction(session_factory(engine)) as session:
            found = await directory_payers(session)
    finally:
        await engine.dispose()
    return [
        f"{p.id:<12} {p.claim_filing_indicator.value:<3} {p.claims_connector or '-':<12} "
        f"{p.status_inquiry_days:>4}d  {p.name}"
        for p in found.values()
    ]
