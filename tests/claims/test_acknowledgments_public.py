"""Public 999 and 277CA files (other projects' fixtures) go through ``apply_file`` without error: they
acknowledge nothing of the practice's, so a 999 is refused saying so and a 277CA is processed with its claims
counted unmatched; a file not readable as its kind is refused whole, naming the segment."""

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

PUBLIC = Path(__file__).parents[1] / "x12" / "fixtures" / "public"


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("999", "x12-parser__x12_999_rejected.txt"),
        ("999", "pyx12__834_lui_id_5010.999.txt"),
        ("999", "pyx12__834_ls_le_ls_5010.999.txt"),
        ("277CA", "x12-parser__x12_277CA_accepted.txt"),
        ("277CA", "x12-parser__x12_277CA_rejected.txt"),
    ],
)
async def test_public_acknowledgments_apply_without_error_and_touch_nothing(
    *,
    kind: str,
    name: str,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    practice: Tenant,
    owner_engine: AsyncEngine,
) -> None:
    content = (PUBLIC / kind / name).read_bytes()
    store = BlobStore()
    async with practice_scope(sessions, settings, practice) as scope:
        row, _ = await files.keep(scope, store, content, direction=Direction.INBOUND)
        outcome = await apply_file(scope, store, row.id)
    assert outcome.kind == kind
    assert outcome.accepted == outcome.rejected == outcome.items == 0
    if kind == "999":  # about no batch of ours: refused, saying why without content
        assert outcome.status is FileStatus.REFUSED
        assert outcome.error is not None
        assert "no submission batch" in outcome.error
    else:
        assert outcome.status is FileStatus.PROCESSED
        assert outcome.unmatched >= 1
    settled = await rows(owner_engine, "SELECT status FROM rcm.x12_file WHERE tenant_id = :t", t=practice.id)
    assert [r.status for r in settled] == [outcome.status.value]


async def test_a_file_not_readable_as_its_kind_is_refused_whole(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, practice: Tenant
) -> None:
    """A 277CA whose claim level lacks its trace: refused naming the segment, nothing applied."""
    content = (PUBLIC / "277CA" / "x12-parser__x12_277CA_accepted.txt").read_bytes()
    assert b"TRN*2*" in content
    broken = content.replace(b"TRN*2*", b"TRN*9*")
    store = BlobStore()
    async with practice_scope(sessions, settings, practice) as scope:
        row, _ = await files.keep(scope, store, broken, direction=Direction.INBOUND)
        outcome = await apply_file(scope, store, row.id)
    assert (outcome.kind, outcome.status, outcome.already) == ("277CA", FileStatus.REFUSED, False)
    assert outcome.error is not None
    assert outcome.error.startswith("segment TRN")
