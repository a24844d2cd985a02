"""A database superuser who bypasses the triggers (``session_replication_role = replica``) can rewrite the
log, the seals, the chain head and the checkpoint rows; verify, comparing with the external anchor copy,
must say what was done."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from rcm.audit import repository
from rcm.audit.anchors import DirectoryAnchorStore, publish_checkpoint, read_anchors
from rcm.audit.checkpoints import load_signer, public_keys_in, write_checkpoints
from rcm.audit.records import AuditRecord
from rcm.audit.service import VerifyReport, verify
from rcm.audit.verification import UNANCHORED_GRACE
from rcm.kit.db import tenant_transaction
from rcm.kit.tenant import TenantContext, TenantId
from rcm.tenancy.models import Tenant
from tests.audit.conftest import MakeEvent, seal_all, write_events
from tests.audit.test_trail import chain


@pytest.fixture
def store(tmp_path: Path) -> DirectoryAnchorStore:
    return DirectoryAnchorStore(tmp_path / "anchors")


@pytest.fixture
async def chained(  # noqa: PLR0917 - pytest fixtures
    sessions: async_sessionmaker[AsyncSession],
    audit_sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    make_event: MakeEvent,
    key_dir: Path,
    store: DirectoryAnchorStore,
) -> Tenant:
    """Eight sealed events and a signed checkpoint at seq 8, in the database and in the anchor store."""
    await write_events(sessions, [make_event(tenant.id, detail={"n": i}) for i in range(8)])
    await seal_all(audit_sessions)
    async with tenant_transaction(audit_sessions, TenantContext.single(TenantId(tenant.id))) as session:
        written = await write_checkpoints(session, [tenant.id], load_signer(key_dir, create=True))
    assert [w["seq"] for w in written] == [8]
    assert all(publish_checkpoint(store, row) for row in written)
    return tenant


async def _verify(
    sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    key_dir: Path,
    store: DirectoryAnchorStore,
    *,
    copy_grace: timedelta = UNANCHORED_GRACE,
) -> VerifyReport:
    anchors = read_anchors(store)  # before the database, as the CLI and the API read them
    async with tenant_transaction(sessions, TenantContext.single(TenantId(tenant.id))) as session:
        return await verify(
            session, [tenant.id], public_keys=public_keys_in(key_dir), anchors=anchors, copy_grace=copy_grace
        )


async def _tamper(conn: AsyncConnection, tenant: Tenant, *statements: str) -> None:
    for statement in statements:
        await conn.execute(text(statement), {"t": tenant.id})
    await conn.commit()


def _kinds(report: VerifyReport, tenant: Tenant) -> set[tuple[int | None, str]]:
    return {(p.seq, p.kind) for p in report.for_tenant(tenant.id).problems}


async def test_intact_chain_verifies(
    sessions: async_sessionmaker[AsyncSession], chained: Tenant, key_dir: Path, store: DirectoryAnchorStore
) -> None:
    report = await _verify(sessions, chained, key_dir, store)
    tenant_report = report.for_tenant(chained.id)
    assert report.ok, tenant_report.problems
    assert (tenant_report.events, tenant_report.head_seq, tenant_report.checkpoints) == (8, 8, 1)
    assert (tenant_report.anchors, tenant_report.unsealed) == (1, 0)


async def test_unsealed_events_are_pending_not_broken(
    sessions: async_sessionmaker[AsyncSession],
    chained: Tenant,
    make_event: MakeEvent,
    key_dir: Path,
    store: DirectoryAnchorStore,
) -> None:
    await write_events(sessions, [make_event(chained.id), make_event(chained.id)])
    report = await _verify(sessions, chained, key_dir, store)
    assert report.ok, report.for_tenant(chained.id).problems
    assert report.for_tenant(chained.id).unsealed == 2


async def test_edit_is_reported(
    sessions: async_sessionmaker[AsyncSession],
    chained: Tenant,
    superuser: AsyncConnection,
    key_dir: Path,
    store: DirectoryAnchorStore,
) -> None:
    seal = "(SELECT event_id FROM rcm.audit_seal WHERE tenant_id = :t AND seq = 3)"
    await _tamper(
        superuser,
        chained,
        f"UPDATE rcm.audit_event SET event_type = 'patient.update' WHERE tenant_id = :t AND id = {seal}",  # noqa: S608
    )
    report = await _verify(sessions, chained, key_dir, store)
    assert _kinds(report, chained) == {(3, "edited")}


async def _rechain_from(owner_engine: AsyncEngine, conn: AsyncConnection, tenant: Tenant, seq: int) -> None:
    """Edit the event at ``seq`` and recompute every later hash and the head: the database is consistent
    again, as a careful attacker would leave it."""
    records = await chain(owner_engine, tenant.id)
    prev = records[seq - 2].hash if seq > 1 else bytes(32)
    for stored in records[seq - 1 :]:
        rec = stored
        if rec.seq == seq:
            await conn.execute(
                text(
                    "UPDATE rcm.audit_event SET event_type = 'nothing.happened' "
                    "WHERE tenant_id = :t AND id = :id"
                ),
                {"t": tenant.id, "id": rec.id},
            )
            rec = AuditRecord(
                **{**{n: getattr(rec, n) for n in AuditRecord.__slots__}, "event_type": "nothing.happened"}
            )
        digest = rec.computed_hash(prev_hash=prev)
        await conn.execute(
            text("UPDATE rcm.audit_seal SET prev_hash = :p, hash = :h WHERE tenant_id = :t AND seq = :s"),
            {"p": prev, "h": digest, "t": tenant.id, "s": rec.seq},
        )
        prev = digest
    await conn.execute(
        text("UPDATE rcm.audit_chain_head SET hash = :h WHERE tenant_id = :t"), {"h": prev, "t": tenant.id}
    )
    await conn.commit()


async def test_rechained_edit_is_reported(  # noqa: PLR0917 - pytest fixtures
    sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
    chained: Tenant,
    superuser: AsyncConnection,
    key_dir: Path,
    store: DirectoryAnchorStore,
) -> None:
    await _rechain_from(owner_engine, superuser, chained, 3)
    # And the checkpoint row that would betray it is deleted too: the external copy still knows.
    await _tamper(superuser, chained, "DELETE FROM rcm.audit_checkpoint WHERE tenant_id = :t")
    report = await _verify(sessions, chained, key_dir, store)
    assert _kinds(report, chained) == {(8, "checkpoint_mismatch"), (8, "checkpoint_missing")}


async def test_tail_cut_is_reported(
    sessions: async_sessionmaker[AsyncSession],
    chained: Tenant,
    superuser: AsyncConnection,
    key_dir: Path,
    store: DirectoryAnchorStore,
) -> None:
    # Cut the tail, move the head back and delete the checkpoint: the database agrees with itself.
    await _tamper(
        superuser,
        chained,
        "DELETE FROM rcm.audit_event e USING rcm.audit_seal s WHERE s.tenant_id = :t AND s.seq > 5 "
        "AND e.tenant_id = s.tenant_id AND e.id = s.event_id",
        "DELETE FROM rcm.audit_seal WHERE tenant_id = :t AND seq > 5",
        "UPDATE rcm.audit_chain_head SET seq = 5, hash = (SELECT hash FROM rcm.audit_seal "
        "WHERE tenant_id = :t AND seq = 5) WHERE tenant_id = :t",
        "DELETE FROM rcm.audit_checkpoint WHERE tenant_id = :t",
    )
    report = await _verify(sessions, chained, key_dir, store)
    assert _kinds(report, chained) == {(8, "truncated"), (8, "checkpoint_missing")}


async def test_whole_chain_deleted_is_reported(
    sessions: async_sessionmaker[AsyncSession],
    chained: Tenant,
    superuser: AsyncConnection,
    key_dir: Path,
    store: DirectoryAnchorStore,
) -> None:
    await _tamper(
        superuser,
        chained,
        "DELETE FROM rcm.audit_event WHERE tenant_id = :t",
        "DELETE FROM rcm.audit_seal WHERE tenant_id = :t",
        "DELETE FROM rcm.audit_chain_head WHERE tenant_id = :t",
        "DELETE FROM rcm.audit_checkpoint WHERE tenant_id = :t",
    )
    report = await _verify(sessions, chained, key_dir, store)
    assert _kinds(report, chained) == {(8, "chain_vanished"), (8, "checkpoint_missing")}


async def test_checkpoint_rows_deleted_are_reported(
    sessions: async_sessionmaker[AsyncSession],
    chained: Tenant,
    superuser: AsyncConnection,
    key_dir: Path,
    store: DirectoryAnchorStore,
) -> None:
    await _tamper(superuser, chained, "DELETE FROM rcm.audit_checkpoint WHERE tenant_id = :t")
    report = await _verify(sessions, chained, key_dir, store)
    assert _kinds(report, chained) == {(8, "checkpoint_missing")}


async def test_a_stripped_seal_is_reported(
    sessions: async_sessionmaker[AsyncSession],
    chained: Tenant,
    superuser: AsyncConnection,
    key_dir: Path,
    store: DirectoryAnchorStore,
) -> None:
    # The event stays, its seal goes: a hole in the chain, and an event the chainer passed without sealing.
    await _tamper(superuser, chained, "DELETE FROM rcm.audit_seal WHERE tenant_id = :t AND seq = 4")
    report = await _verify(sessions, chained, key_dir, store)
    assert _kinds(report, chained) == {(4, "deleted"), (None, "skipped")}


async def test_delete_is_reported(
    sessions: async_sessionmaker[AsyncSession],
    chained: Tenant,
    superuser: AsyncConnection,
    key_dir: Path,
    store: DirectoryAnchorStore,
) -> None:
    await _tamper(
        superuser,
        chained,
        "DELETE FROM rcm.audit_event WHERE tenant_id = :t AND id = "
        "(SELECT event_id FROM rcm.audit_seal WHERE tenant_id = :t AND seq = 4)",
    )
    report = await _verify(sessions, chained, key_dir, store)
    assert _kinds(report, chained) == {(4, "deleted")}


async def test_insert_is_reported(
    sessions: async_sessionmaker[AsyncSession],
    chained: Tenant,
    superuser: AsyncConnection,
    key_dir: Path,
    store: DirectoryAnchorStore,
) -> None:
    # A forged seal at an existing position (the primary key dropped first), and one after the head.
    await _tamper(
        superuser,
        chained,
        "ALTER TABLE rcm.audit_seal DROP CONSTRAINT pk_audit_seal",
        "ALTER TABLE rcm.audit_seal DROP CONSTRAINT uq_audit_seal_event",
        "INSERT INTO rcm.audit_seal (tenant_id, seq, event_id, occurred_at, prev_hash, hash) "
        "SELECT tenant_id, 5, event_id, occurred_at, prev_hash, decode(repeat('11', 32), 'hex') "
        "FROM rcm.audit_seal WHERE tenant_id = :t AND seq = 5",
        "INSERT INTO rcm.audit_seal (tenant_id, seq, event_id, occurred_at, prev_hash, hash) "
        "SELECT tenant_id, 9, event_id, occurred_at, hash, hash FROM rcm.audit_seal "
        "WHERE tenant_id = :t AND seq = 8",
    )
    try:
        report = await _verify(sessions, chained, key_dir, store)
    finally:
        await _tamper(
            superuser,
            chained,
            "DELETE FROM rcm.audit_seal WHERE tenant_id = :t "
            "AND (seq = 9 OR hash = decode(repeat('11', 32), 'hex'))",
            "ALTER TABLE rcm.audit_seal ADD CONSTRAINT pk_audit_seal PRIMARY KEY (tenant_id, seq)",
            "ALTER TABLE rcm.audit_seal ADD CONSTRAINT uq_audit_seal_event UNIQUE (tenant_id, event_id)",
        )
    kinds = _kinds(report, chained)
    assert (5, "inserted") in kinds
    assert (9, "inserted") in kinds


async def test_reorder_is_reported(
    sessions: async_sessionmaker[AsyncSession],
    chained: Tenant,
    superuser: AsyncConnection,
    key_dir: Path,
    store: DirectoryAnchorStore,
) -> None:
    await _tamper(
        superuser,
        chained,
        # Positions swapped (each seal row keeps its event and hashes), through a free position.
        "UPDATE rcm.audit_seal SET seq = 1000 WHERE tenant_id = :t AND seq = 5",
        "UPDATE rcm.audit_seal SET seq = 5 WHERE tenant_id = :t AND seq = 6",
        "UPDATE rcm.audit_seal SET seq = 6 WHERE tenant_id = :t AND seq = 1000",
    )
    report = await _verify(sessions, chained, key_dir, store)
    assert _kinds(report, chained) == {(5, "reordered"), (6, "reordered")}


async def test_forged_checkpoint_signature_is_reported(
    sessions: async_sessionmaker[AsyncSession],
    chained: Tenant,
    superuser: AsyncConnection,
    key_dir: Path,
    store: DirectoryAnchorStore,
) -> None:
    await _tamper(
        superuser,
        chained,
        "UPDATE rcm.audit_checkpoint SET signature = decode(repeat('00', 64), 'hex') WHERE tenant_id = :t",
    )
    report = await _verify(sessions, chained, key_dir, store)
    assert _kinds(report, chained) == {(8, "bad_signature"), (8, "anchor_mismatch")}


async def test_a_checkpoint_missing_from_the_external_copy_is_reported(
    sessions: async_sessionmaker[AsyncSession],
    chained: Tenant,
    key_dir: Path,
    tmp_path: Path,
) -> None:
    empty = DirectoryAnchorStore(tmp_path / "empty")
    # Just written: the copy may still be on its way, not a finding.
    assert (await _verify(sessions, chained, key_dir, empty)).ok
    # Minutes later it should have arrived (here: no grace at all).
    report = await _verify(sessions, chained, key_dir, empty, copy_grace=timedelta(0))
    assert _kinds(report, chained) == {(8, "unanchored")}


async def test_disabled_trigger_is_reported(
    sessions: async_sessionmaker[AsyncSession],
    chained: Tenant,
    owner_engine: AsyncEngine,
    key_dir: Path,
    store: DirectoryAnchorStore,
) -> None:
    async with owner_engine.begin() as conn:
        await conn.execute(text("ALTER TABLE rcm.audit_checkpoint DISABLE TRIGGER audit_no_update_delete"))
    try:
        report = await _verify(sessions, chained, key_dir, store)
    finally:
        async with owner_engine.begin() as conn:
            await conn.execute(text("ALTER TABLE rcm.audit_checkpoint ENABLE TRIGGER audit_no_update_delete"))
    assert not report.ok
    assert "audit_checkpoint.audit_no_update_delete" in report.global_problems[0]


@pytest.mark.parametrize(
    "planted",
    [
        # An event repeating a sealed event's id at another time (the seal's unique key would refuse it).
        "SELECT tenant_id, occurred_at + interval '1 second', id, event_type, action, outcome, actor_kind, "
        "actor_subject, actor_roles, client_id, actor_hint, resource_type, resource_ids, patient_ids, "
        "source_ip, request_id, trace_id, detail FROM rcm.audit_event WHERE tenant_id = :t LIMIT 1",
        # An event whose detail is nested far deeper than any parser's recursion allows.
        "SELECT tenant_id, occurred_at, gen_random_uuid(), event_type, action, outcome, actor_kind, "
        "actor_subject, actor_roles, client_id, actor_hint, resource_type, resource_ids, patient_ids, "
        "source_ip, request_id, trace_id, (repeat('{\"a\":', 5000) || '1' || repeat('}', 5000))::jsonb "
        "FROM rcm.audit_event WHERE tenant_id = :t LIMIT 1",
    ],
    ids=["repeated-id", "deep-detail"],
)
async def test_an_event_planted_by_the_app_role_stalls_no_one_and_is_reported(
    *,
    planted: str,
    sessions: async_sessionmaker[AsyncSession],
    audit_sessions: async_sessionmaker[AsyncSession],
    chained: Tenant,
    other_tenant: Tenant,
    make_event: MakeEvent,
    key_dir: Path,
    store: DirectoryAnchorStore,
    superuser: AsyncConnection,
) -> None:
    """A leaked app credential can insert audit rows; one the chainer cannot seal must not stop it sealing
    every other tenant's events, and verify must report the planted row instead of calling the log intact."""
    try:
        await _plant_and_check(
            planted,
            sessions=sessions,
            audit_sessions=audit_sessions,
            chained=chained,
            other_tenant=other_tenant,
            make_event=make_event,
            key_dir=key_dir,
            store=store,
        )
    finally:
        # The shared test database must not keep an unreadable row for the tests that read every event.
        await _tamper(
            superuser,
            chained,
            "DELETE FROM rcm.audit_event e WHERE tenant_id = :t AND NOT EXISTS (SELECT 1 "
            "FROM rcm.audit_seal s WHERE s.tenant_id = e.tenant_id AND s.event_id = e.id "
            "AND s.occurred_at = e.occurred_at)",
        )


async def _plant_and_check(
    planted: str,
    *,
    sessions: async_sessionmaker[AsyncSession],
    audit_sessions: async_sessionmaker[AsyncSession],
    chained: Tenant,
    other_tenant: Tenant,
    make_event: MakeEvent,
    key_dir: Path,
    store: DirectoryAnchorStore,
) -> None:
    async with tenant_transaction(sessions, TenantContext.single(TenantId(chained.id))) as session:
        await session.execute(
            text(
                "INSERT INTO rcm.audit_event (tenant_id, occurred_at, id, event_type, action, outcome, "
                "actor_kind, actor_subject, actor_roles, client_id, actor_hint, resource_type, resource_ids, "
                "patient_ids, source_ip, request_id, trace_id, detail) " + planted
            ),
            {"t": chained.id},
        )
    await write_events(sessions, [make_event(other_tenant.id), make_event(chained.id)])
    await seal_all(audit_sessions)
    theirs = await _verify(sessions, other_tenant, key_dir, store)
    assert theirs.tenants[0].problems == []
    assert theirs.tenants[0].unsealed == 0
    report = await _verify(sessions, chained, key_dir, store)
    assert not report.ok
    assert "skipped" in {kind for _, kind in _kinds(report, chained)}
    assert report.tenants[0].head_seq == 9  # the ordinary event after the planted one was sealed
    # The auditor's search still answers: every row is listed (the planted one is evidence) and a detail no
    # parser can read is marked, not a failed page.
    async with tenant_transaction(sessions, TenantContext.single(TenantId(chained.id))) as session:
        page = await repository.search_page(
            session, repository.Filters(tenant_id=chained.id), limit=100, after=None
        )
        streamed = [
            r async for r in repository.stream_records(session, repository.Filters(tenant_id=chained.id))
        ]
    assert len(page) == len(streamed) == 10
    unreadable = [r for r in page if r.detail == repository.UNREADABLE_DETAIL]
    assert len(unreadable) == (1 if "repeat(" in planted else 0)
