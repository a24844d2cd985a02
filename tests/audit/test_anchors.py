"""The external checkpoint copy: write-once, listed by prefix, never escaping its directory; a checkpoint the
process committed but could not copy is copied on the next start."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit.anchors import DirectoryAnchorStore, read_anchors
from rcm.audit.chainer import checkpoint_due, republish_latest
from rcm.audit.checkpoints import load_signer
from rcm.tenancy.models import Tenant
from tests.audit.conftest import MakeEvent, seal_all, write_events


def test_a_stored_anchor_is_never_overwritten(tmp_path: Path) -> None:
    store = DirectoryAnchorStore(tmp_path)
    assert store.put_once("checkpoints/a/1.json", b"first") == b"first"
    assert store.put_once("checkpoints/a/1.json", b"second") == b"first"
    assert store.get("checkpoints/a/1.json") == b"first"
    store.put_once("checkpoints/b/1.json", b"other")
    store.put_once("keys/k.pub.pem", b"pem")
    assert list(store.names("checkpoints/a/")) == ["checkpoints/a/1.json"]
    assert sorted(store.names("checkpoints/")) == ["checkpoints/a/1.json", "checkpoints/b/1.json"]
    with pytest.raises(ValueError, match="inside"):
        store.put_once("../escape.json", b"x")


def test_an_unreadable_anchor_is_reported_not_skipped(tmp_path: Path) -> None:
    store = DirectoryAnchorStore(tmp_path)
    tenant = uuid.uuid4()
    store.put_once(f"checkpoints/{tenant}/00000000000000000001.k.json", b"{not json")
    assert read_anchors(store) == {
        tenant: [{"name": f"checkpoints/{tenant}/00000000000000000001.k.json", "unreadable": True}]
    }


async def test_a_checkpoint_left_uncopied_is_copied_on_the_next_start(  # noqa: PLR0917 - pytest fixtures
    sessions: async_sessionmaker[AsyncSession],
    audit_sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    make_event: MakeEvent,
    key_dir: Path,
    tmp_path: Path,
) -> None:
    await write_events(sessions, [make_event(tenant.id)])
    await seal_all(audit_sessions)
    signer = load_signer(key_dir, create=True)
    # The process "dies" between commit and copy: no store given to the run.
    run = await checkpoint_due(audit_sessions, signer, None, every_events=None, every_seconds=None)
    assert tenant.id in {row["tenant_id"] for row in run.checkpoints}
    store = DirectoryAnchorStore(tmp_path / "anchors")
    assert read_anchors(store, [tenant.id]) == {}
    assert await republish_latest(audit_sessions, store) == 0
    [anchor] = read_anchors(store, [tenant.id])[tenant.id]
    assert int(anchor["seq"]) == 1
