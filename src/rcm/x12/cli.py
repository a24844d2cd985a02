"""``rcm x12 parse`` and ``rcm x12 validate``: any X12 file as JSON, or its findings, without a database."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import msgspec

from rcm.x12.document import describe, validate
from rcm.x12.errors import X12Error

_ENCODING = click.option(
    "--encoding",
    default="utf-8",
    show_default=True,
    help="Character encoding of the file (a UTF-8 byte-order mark is always accepted).",
)


@click.group()
def x12() -> None:
    """Read and check X12 5010 files (837P, 837I, 835, 999, 277CA, 270/271, 276/277)."""


@x12.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_ENCODING
@click.option("--compact", is_flag=True, help="One line of JSON instead of an indented document.")
def parse(file: Path, encoding: str, compact: bool) -> None:
    """Print FILE as JSON: envelopes, transaction sets, and for the kinds we read, claims and amounts."""
    try:
        with file.open("rb") as handle:
            document = describe(handle, encoding=encoding)
    except X12Error as exc:
        click.echo(f"rcm x12 parse: {file.name}: {exc.describe()}", err=True)
        sys.exit(1)
    encoded = msgspec.json.encode(document)
    click.echo(encoded if compact else msgspec.json.format(encoded, indent=2))


@x12.command(name="validate")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_ENCODING
def validate_command(file: Path, encoding: str) -> None:
    """Check FILE's envelopes, counts and, for the kinds we know, guide rules; exit 1 when anything fails."""
    with file.open("rb") as handle:
        findings = validate(handle, encoding=encoding)
    if not findings:
        click.echo(f"{file.name}: valid")
        return
    for finding in findings:
        click.echo(f"{file.name}: {finding}")
    sys.exit(1)
