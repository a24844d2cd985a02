"""Raw X12 kept: encrypted at rest, once per content, its envelope read in clear, audited, per practice."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.blobs.store import BlobStore
from rcm.config import Settings
from rcm.interchanges import service as files
from rcm.interchanges.models import Direction, FileStatus
from rcm.interchanges.repository import X12FileRepository
from rcm.tenancy.models import Tenant
from tests.claims.conftest import practice_scope, rows

PUBLIC = Path(__file__).parents[1] / "x12" / "fixtures" / "public"
ACK = (PUBLIC / "999" / "x12-parser__x12_999_rejected.txt").read_bytes()
CLAIM_ACK = (PUBLIC / "277CA" / "x12-parser__x12_277CA_accepted.txt").read_bytes()


async def test_a_file_is_kept_once_encrypted_and_read_back_audited(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    practice: Tenant,
    other_practice: Tenant,
    owner_engine: AsyncEngine,
) -> None:
    store = BlobStore()
    async with practice_scope(sessions, settings, practice) as scope:
        row, new = await files.keep(scope, store, ACK, direction=Direction.INBOUND, connector="sandbox")
        again, new_again = await files.keep(scope, store, ACK, direction=Direction.INBOUND)
        ack277, _ = await files.keep(scope, store, CLAIM_ACK, direction=Direction.INBOUND)
    assert new
    assert not new_again
    assert again.id == row.id
    assert row.kind == "999"
    assert ack277.kind == "277CA"
    assert row.status is FileStatus.KEPT
    assert row.error is None
    assert row.sha256 == hashlib.sha256(ACK).digest()
    assert row.size == len(ACK)
    assert row.interchange_control_number is not None
    assert row.sender_id

    # At rest: ciphertext only (the 999's ISA does not appear in any chunk of the blob).
    chunks = await rows(
        owner_engine,
        "SELECT data FROM rcm.blob_chunk WHERE tenant_id = :t AND blob_id = :b",
        t=practice.id,
        b=row.blob_id,
    )
    assert chunks
    assert all(b"ISA" not in bytes(chunk.data) for chunk in chunks)

    async with practice_scope(sessions, settings, practice) as scope:
        kept = await scope.repo(X12FileRepository).get(row.id)
        assert kept is not None
        assert await files.read(scope, store, kept) == ACK
    audited = await rows(
        owner_engine,
        "SELECT event_type FROM rcm.audit_event WHERE tenant_id = :t AND :f = ANY (resource_ids)",
        t=practice.id,
        f=row.id,
    )
    assert sorted(r.event_type for r in audited) == ["x12_file.create", "x12_file.read"]

    # Another practice sees none of it; the same bytes there are its own file.
    async with practice_scope(sessions, settings, other_practice) as scope:
        assert await scope.repo(X12FileRepository).get(row.id) is None
        theirs, theirs_new = await files.keep(scope, store, ACK, direction=Direction.INBOUND)
    assert theirs_new
    assert theirs.id != row.id


async def test_what_is_not_x12_is_kept_refused_naming_where(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, practice: Tenant
) -> None:
    truncated = ACK[: ACK.index(b"IEA")]
    async with practice_scope(sessions, settings, practice) as scope:
        broken, _ = await files.keep(scope, BlobStore(), truncated, direction=Direction.INBOUND)
        prose, _ = await files.keep(scope, BlobStore(), b"Dear biller, hello", direction=Direction.INBOUND)
    assert broken.kind == "unknown"
    assert broken.status is FileStatus.REFUSED
    assert broken.error is not None
    assert "position" in broken.error
    assert prose.status is FileStatus.REFUSED
    assert prose.error
    assert "biller" not in (prose.error or "")


def test_the_envelope_is_read_from_the_first_transaction() -> None:
    envelope = files.envelope_of(CLAIM_ACK)
    assert envelope.kind == "277CA"
    assert envelope.error is None
    assert envelope.interchange_control_number is not None
