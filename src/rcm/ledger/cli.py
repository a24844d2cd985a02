"""``rcm remit import FILE``: post an 835 file (see ``rcm.ledger.intake``), printing a JSON summary. Exits 1
with one line when the file is not a valid 835 or every transaction set in it was received before."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from rcm.config import get_settings

if TYPE_CHECKING:
    from rcm.ledger.schemas import RemittanceImport


@click.group()
def remit() -> None:
    """Remittances (835): import and post to the ledger."""


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
