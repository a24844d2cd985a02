"""Every public 835 in ../shared/data/x12/835 gets its verdict, applied in a practice of its own: refused
whole where it is not a valid 835 (the segment and position named), posted and reconciled to the cent where
it balances (the payments posted are BPR02; claims no practice has are unapplied), and every repeat of a
trace number, payer and amount refused as a duplicate. None of these files is held: ``test_posting`` holds
an unbalanced set written by our writer."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.blobs.store import BlobStore
from rcm.claims.acknowledgments import apply_file
from rcm.config import Settings
from rcm.interchanges import service as files
from rcm.interchanges.models import Direction, FileStatus
from rcm.tenancy.models import Tenant
from tests.claims.conftest import practice_scope, rows

PUBLIC = Path(__file__).parents[1] / "x12" / "fixtures" / "public" / "835"

# file -> (refused at, sets posted, duplicates, cents posted as unapplied)
VERDICTS: dict[str, tuple[str | None, int, int, int]] = {
    "CHS-CDS-AIML-edi-835-parser__test.835": ("segment SE at position 18", 0, 0, 0),
    "affect-therapeutics-edi-835-parser__exhaustive_sample.txt": ("segment ", 0, 0, 0),
    # Three balanced sets, then an IEA whose control number is not ISA13: the whole file refused.
    "affect-therapeutics-edi-835-parser__nevada_medicaid.txt": (
        "segment IEA at position 67",
        0,
        0,
        0,
    ),
    "affect-therapeutics-edi-835-parser__sample_835.txt": ("segment SE at position 57", 0, 0, 0),
    "affect-therapeutics-edi-835-parser__sample_835_with_interests.txt": (
        "segment SE at position 57",
        0,
        0,
        0,
    ),
    "pyx12__835_mult_loops.txt": (None, 1, 0, 0),
    "tastypackets-x12-parser__multi-line-not-delimited.edi": (None, 1, 0, 4575),
    # The same payment repeated in one file: posted once.
    "tastypackets-x12-parser__profee-multiple.edi": (None, 1, 155, 4575),
}


def test_every_public_file_has_a_verdict() -> None:
    assert sorted(VERDICTS) == sorted(p.name for p in PUBLIC.iterdir())


@pytest.mark.parametrize("name", sorted(VERDICTS))
async def test_the_public_835s_verdicts(
    name: str,
    practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    refused_at, posted, duplicates, unapplied = VERDICTS[name]
    store = BlobStore()
    async with practice_scope(sessions, settings, practice) as scope:
        row, _ = await files.keep(
            scope, store, (PUBLIC / name).read_bytes(), direction=Direction.INBOUND, connector="test"
        )
    async with practice_scope(sessions, settings, practice) as scope:
        outcome = await apply_file(scope, store, row.id)
    found = await rows(
        owner_engine,
        "SELECT r.state, r.total_paid_cents,"
        " (SELECT coalesce(sum(e.amount_cents), 0) FROM rcm.ledger_posting p JOIN rcm.ledger_entry e"
        "   ON (e.tenant_id, e.posting_id) = (p.tenant_id, p.id)"
        "  WHERE (p.tenant_id, p.remittance_id) = (r.tenant_id, r.id) AND e.account = 'payments') AS cash"
        " FROM rcm.remittance r WHERE r.tenant_id = :t",
        t=practice.id,
    )
    if refused_at is not None:
        assert outcome.status is FileStatus.REFUSED
        assert outcome.error is not None
        assert outcome.error.startswith(refused_at)
        assert found == []  # refused whole: nothing recorded, nothing posted
        return
    assert outcome.status is FileStatus.PROCESSED
    assert (outcome.posted, outcome.held, outcome.duplicates) == (posted, 0, duplicates)
    assert outcome.unapplied_cents == unapplied
    assert len(found) == posted
    # Reconciled to the cent: what was posted to payments is each remittance's BPR02.
    assert all(r.state == "posted" and r.cash == r.total_paid_cents for r in found)
