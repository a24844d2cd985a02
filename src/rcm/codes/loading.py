"""Loading releases with the operator's (administrative) URL, one transaction each, and the set the demo
loads: ICD-10-CM from its package, the shipped HCPCS copy, POS and RARC values, the tiny demo CPT file."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from rcm.codes.importers.base import ParsedRelease
from rcm.codes.service import LoadReport, load_release
from rcm.codes.sources import SourceKind, releases_for, shipped
from rcm.kit.db import create_engine, platform_transaction, session_factory

DEMO_CPT_LABEL = "DEMO CPT (demo wording, not the AMA's)"
DEMO_CPT_FROM = date(2020, 1, 1)


async def load_releases(admin_url: str, parsed: Sequence[ParsedRelease]) -> list[LoadReport]:
    """Each release in its own transaction (readers keep the previous one until it commits)."""
    engine = create_engine(admin_url, pool_size=1, application_name="rcm-codes")
    reports = []
    try:
        sessions = session_factory(engine)
        for release in parsed:
            async with platform_transaction(sessions) as session:
                reports.append(await load_release(session, release))
    finally:
        await engine.dispose()
    return reports


def demo_releases() -> list[ParsedRelease]:
    return [
        *releases_for(SourceKind.ICD10CM, []),
        *releases_for(SourceKind.HCPCS, []),
        *releases_for(SourceKind.POS, []),
        *releases_for(SourceKind.RARC, []),
        *releases_for(
            SourceKind.CPT,
            [shipped("demo", "cpt_demo.csv")],
            label=DEMO_CPT_LABEL,
            effective_from=DEMO_CPT_FROM,
        ),
        # A handful of edit rows written for the demo (rcm/codes/fixtures/demo/README.md), so its scrubs run
        # every edit: without NCCI, MUE and sex/age releases a scrub is "incomplete" and builds no claim.
        *releases_for(
            SourceKind.NCCI,
            [shipped("demo", "ccipra-demo-f1.TXT")],
            label="DEMO NCCI PTP",
            effective_from=DEMO_CPT_FROM,
        ),
        *releases_for(
            SourceKind.MUE, [shipped("demo", "mue_demo.csv")], label="DEMO MUE", effective_from=DEMO_CPT_FROM
        ),
        *releases_for(
            SourceKind.SEX_AGE,
            [shipped("demo", "sex_age_demo.csv")],
            label="DEMO sex/age edits",
            effective_from=DEMO_CPT_FROM,
        ),
    ]


async def load_demo_code_sets(admin_url: str) -> list[LoadReport]:
    """Idempotent: on a re-run every release is found by its checksum and nothing is read twice."""
    return await load_releases(admin_url, demo_releases())
