"""A database superuser who switches the triggers off can rewrite the log; verify must say what was done."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from rcm.audit.checkpoints import load_signer, public_keys_in, write_checkpoints
from rcm.audit.service import VerifyReport, verify
from rcm.kit.db import tenant_transaction
from rcm.kit.tenant import TenantContext, TenantId
from rcm.tenancy.models import Tenant
from tests.audit.conftest import MakeEvent, write_events


@pytest.fixture
async def chained(
    sessions: async_sessionmaker[AsyncSession], tenant: Tenant, make_event: MakeEvent, key_dir: Path
) -> Tenant:
    """Eight events and a signed checkpoint at seq 8."""
    await write_events(sessions, [make_event(tenant.id, detail={"n": i}) for i in range(8)])
    async with tenant_transaction(sessions, TenantContext.single(TenantId(tenant.id))) as session:
        written = await write_checkpoints(session, [tenant.id], load_signer(key_dir, create=True))
    assert [w["seq"] for w in written] == [8]
    return tenant


async def _verify(sessions: async_sessionmaker[AsyncSession], tenant: Tenant, key_dir: Path) -> VerifyReport:
    async with tenant_transaction(sessions, TenantContext.single(TenantId(tenant.id))) as session:
        return await verify(session, [tenant.id], public_keys=public_keys_in(key_dir))


async def _tamper(conn: AsyncConnection, tenant: Tenant, statement: str) -> None:
    await conn.execute(text(statement), {"t": tenant.id})
    await conn.commit()


def _kinds(report: VerifyReport, tenant: Tenant) -> set[tuple[int | None, str]]:
    return {(p.seq, p.kind) for p in report.for_tenant(tenant.id).problems}


async def test_intact_chain_verifies(
    sessions: async_sessionmaker[AsyncSession], chained: Tenant, key_dir: Path
) -> None:
    report = await _verify(sessions, chained, key_dir)
    tenant_report = report.for_tenant(chained.id)
    assert report.ok, tenant_report.problems
    assert (tenant_report.events, tenant_report.head_seq, tenant_report.checkpoints) == (8, 8, 1)


async def test_edit_is_reported(
    sessions: async_sessionmaker[AsyncSession], chained: Tenant, superuser: AsyncConnection, key_dir: Path
) -> None:
    await _tamper(
        superuser,
        chained,
        "UPDATE rcm.audit_event SET event_type = 'patient.update' WHERE tenant_id = :t AND seq = 3",
    )
    report = await _verify(sessions, chained, key_dir)
    assert _kinds(report, chained) == {(3, "edited")}


async def test_delete_is_reported(
    sessions: async_sessionmaker[AsyncSession], chained: Tenant, superuser: AsyncConnection, key_dir: Path
) -> None:
    await _tamper(superuser, chained, "DELETE FROM rcm.audit_event WHERE tenant_id = :t AND seq = 4")
    report = await _verify(sessions, chained, key_dir)
    assert _kinds(report, chained) == {(4, "deleted")}


async def test_insert_is_reported(
    sessions: async_sessionmaker[AsyncSession], chained: Tenant, superuser: AsyncConnection, key_dir: Path
) -> None:
    # A forged event slipped in at seq 5 (and one after the head, where no checkpoint covers it yet).
    for seq in (5, 9):
        await _tamper(
            superuser,
            chained,
            "INSERT INTO rcm.audit_event SELECT tenant_id, "  # noqa: S608 - seq is an int literal
            f"{seq}, occurred_at + interval '1 ms', gen_random_uuid(), 'patient.read', action, outcome, "
            "actor_kind, actor_subject, actor_roles, client_id, actor_hint, resource_type, resource_ids, "
            "patient_ids, source_ip, request_id, trace_id, detail, prev_hash, hash "
            "FROM rcm.audit_event WHERE tenant_id = :t AND seq = 5",
        )
    report = await _verify(sessions, chained, key_dir)
    kinds = _kinds(report, chained)
    assert (5, "inserted") in kinds
    assert (9, "inserted") in kinds
    assert not any(kind == "edited" and seq != 9 for seq, kind in kinds)


async def test_reorder_is_reported(
    sessions: async_sessionmaker[AsyncSession], chained: Tenant, superuser: AsyncConnection, key_dir: Path
) -> None:
    await _tamper(
        superuser,
        chained,
        "UPDATE rcm.audit_event SET seq = CASE seq WHEN 5 THEN 6 ELSE 5 END "
        "WHERE tenant_id = :t AND seq IN (5, 6)",
    )
    report = await _verify(sessions, chained, key_dir)
    assert _kinds(report, chained) == {(5, "reordered"), (6, "reordered")}


async def test_truncation_after_checkpoint_is_reported(
    sessions: async_sessionmaker[AsyncSession], chained: Tenant, superuser: AsyncConnection, key_dir: Path
) -> None:
    # Cut the tail and move the head back so chain and head agree: only the signed checkpoint knows.
    await _tamper(superuser, chained, "DELETE FROM rcm.audit_event WHERE tenant_id = :t AND seq > 5")
    await _tamper(
        superuser,
        chained,
        "UPDATE rcm.audit_chain_head SET seq = 5, hash = (SELECT hash FROM rcm.audit_event "
        "WHERE tenant_id = :t AND seq = 5) WHERE tenant_id = :t",
    )
    report = await _verify(sessions, chained, key_dir)
    assert _kinds(report, chained) == {(8, "truncated")}


async def test_forged_checkpoint_signature_is_reported(
    sessions: async_sessionmaker[AsyncSession], chained: Tenant, superuser: AsyncConnection, key_dir: Path
) -> None:
    await _tamper(
        superuser,
        chained,
        "UPDATE rcm.audit_checkpoint SET signature = decode(repeat('00', 64), 'hex') WHERE tenant_id = :t",
    )
    report = await _verify(sessions, chained, key_dir)
    assert _kinds(report, chained) == {(8, "bad_signature")}


async def test_disabled_trigger_is_reported(
    sessions: async_sessionmaker[AsyncSession], chained: Tenant, owner_engine: AsyncEngine, key_dir: Path
) -> None:
    async with owner_engine.begin() as conn:
        await conn.execute(text("ALTER TABLE rcm.audit_checkpoint DISABLE TRIGGER audit_no_update_delete"))
    try:
        report = await _verify(sessions, chained, key_dir)
    finally:
        async with owner_engine.begin() as conn:
            await conn.execute(text("ALTER TABLE rcm.audit_checkpoint ENABLE TRIGGER audit_no_update_delete"))
    assert not report.ok
    assert "audit_checkpoint.audit_no_update_delete" in report.global_problems[0]
