"""``rcm codes load KIND [FILE...]`` and ``rcm codes releases``: the operator keeps the code sets current.

Loads run with the administrative URL, as the owner role (the app role only reads code tables), one
transaction per release: the API keeps answering from the previous release until the new one commits.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from rcm.codes.sources import SourceKind

if TYPE_CHECKING:
    from rcm.codes.importers.base import ParsedRelease


@click.group()
def codes() -> None:
    """Code sets: ICD-10-CM, CPT, HCPCS, POS, CARC, RARC; NCCI, MUE and sex/age edits."""


def _date(_ctx: click.Context, param: click.Parameter, value: datetime | None) -> date | None:
    return value.date() if value is not None else None


@codes.command("load")
@click.argument("kind", type=click.Choice([k.value for k in SourceKind]))
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--label", default=None, help="Release label (default: from the file name).")
@click.option(
    "--effective-from",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    callback=_date,
    default=None,
    help="First date of service the release covers (default: from the file name where it says).",
)
@click.option(
    "--effective-through",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    callback=_date,
    default=None,
    help="Last date of service the release is meant for (ICD-10-CM: end of the fiscal year).",
)
def load(
    kind: str,
    files: tuple[Path, ...],
    label: str | None,
    effective_from: date | None,
    effective_through: date | None,
) -> None:
    """Load a release of KIND from FILES (icd10cm, hcpcs and pos without FILES load what ships).

    Idempotent: a file already loaded changes nothing. Prints what was added, changed and terminated.
    """
    from rcm.codes.importers.base import CodeFileError
    from rcm.codes.service import ReleaseRefused
    from rcm.codes.sources import SourceError, releases_for
    from rcm.config import get_settings
    from rcm.kit.cli import admin_url, run

    try:
        parsed = releases_for(
            SourceKind(kind),
            files,
            label=label,
            effective_from=effective_from,
            effective_through=effective_through,
        )
    except SourceError as exc:
        raise click.UsageError(str(exc)) from None
    except CodeFileError as exc:
        click.echo(f"rcm: {exc}", err=True)
        sys.exit(2)
    url = admin_url(get_settings())
    try:
        lines = run(lambda: _load_all(url, parsed))
    except ReleaseRefused as exc:
        click.echo(f"rcm: {exc.detail}", err=True)
        sys.exit(2)
    for line in lines:
        click.echo(line)


async def _load_all(url: str, parsed: Sequence[ParsedRelease]) -> list[str]:
    from rcm.codes.loading import load_releases

    return [report.line() for report in await load_releases(url, parsed)]


@codes.command("releases")
def releases() -> None:
    """List the loaded releases, oldest first per code set, with what each changed."""
    from rcm.config import get_settings
    from rcm.kit.cli import admin_url, run

    url = admin_url(get_settings())
    for line in run(lambda: _releases(url)):
        click.echo(line)


async def _releases(url: str) -> list[str]:
    from rcm.codes.service import list_releases
    from rcm.kit.db import create_engine, platform_transaction, session_factory

    engine = create_engine(url, pool_size=1, application_name="rcm-codes")
    try:
        async with platform_transaction(session_factory(engine)) as session:
            found = await list_releases(session)
    finally:
        await engine.dispose()
    return [
        f"{r.code_set.value:<9} {r.label:<40} from {r.effective_from.isoformat()}"
        f"{' through ' + r.effective_through.isoformat() if r.effective_through else ''}"
        f"  +{r.added} ~{r.changed} -{r.terminated} ={r.unchanged}  {r.source}"
        for r in found
    ] or ["no code set loaded"]
