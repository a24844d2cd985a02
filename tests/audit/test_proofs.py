"""Inclusion proofs: checkpoints sign an RFC 6962 Merkle root of the range they cover, the API answers one
event's proof, and ``audit/verify_export.py --proof`` (a subprocess, as compliance staff run it) accepts it
and rejects a tampered event, path or checkpoint. Version 1 checkpoints (no root) still verify."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit import merkle, repository
from rcm.audit.checkpoints import checkpoint_document, checkpoint_message, load_signer, write_checkpoints
from rcm.audit.service import verify
from rcm.config import Settings
from rcm.identity.principal import Principal, Role
from rcm.identity.testing import mint_access_token, user_principal
from rcm.kit.db import tenant_transaction
from rcm.kit.models import utcnow
from rcm.kit.tenant import TenantContext, TenantId
from rcm.tenancy.models import Tenant
from tests.audit.conftest import MakeEvent, seal_all, write_events

Client = AsyncTestClient[Litestar]
VERIFIER = Path(__file__).resolve().parents[2] / "audit" / "verify_export.py"


def auditor_of(*tenants: Tenant) -> Principal:
    return user_principal(Role.AUDITOR, auditor_tenants=tuple(t.id for t in tenants))


async def get(
    client: Client, sessions: async_sessionmaker[AsyncSession], settings: Settings, who: Principal, path: str
) -> Any:
    token = await mint_access_token(who, sessions=sessions, settings=settings)
    return await client.get(f"/api/v1/audit{path}", headers={"Authorization": f"Bearer {token}"})


async def checkpoint(
    audit_sessions: async_sessionmaker[AsyncSession], tenants: list[uuid.UUID], key_dir: Path
) -> list[dict[str, Any]]:
    context = TenantContext.system_cross_tenant(tuple(TenantId(t) for t in tenants))
    async with tenant_transaction(audit_sessions, context) as session:
        return await write_checkpoints(session, tenants, load_signer(key_dir, create=True))


def run_verifier(proof: dict[str, Any], tmp_path: Path, key_dir: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / f"proof-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps(proof))
    [public] = sorted(key_dir.glob("*.pub.pem"))
    return subprocess.run(  # noqa: S603 - our own script, fixed arguments
        [sys.executable, str(VERIFIER), "--proof", str(path), "--public-key", str(public)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_merkle_proofs_match_rfc6962_for_every_size_and_position() -> None:
    # The RFC 6962 reference values: the empty tree, and a leaf's hash with its 0x00 prefix.
    assert merkle.root([]).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert merkle.root([b""]).hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    for size in range(1, 34):
        data = [uuid.uuid4().bytes for _ in range(size)]
        root = merkle.root(data)
        for index in range(size):
            path = merkle.audit_path(data, index)
            assert merkle.root_from_path(data[index], index, size, path) == root
            if size > 1:  # the same hashes at another position lead elsewhere
                assert merkle.root_from_path(data[index], (index + 1) % size, size, path) != root
            if path:
                assert merkle.root_from_path(data[index], index, size, path[:-1]) != root


async def test_an_event_proven_offline_and_tampering_rejected(  # noqa: PLR0917 - fixtures
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    audit_sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    tenant: Tenant,
    other_tenant: Tenant,
    make_event: MakeEvent,
    key_dir: Path,
    tmp_path: Path,
) -> None:
    first = [make_event(tenant.id) for _ in range(5)]
    theirs = make_event(other_tenant.id)
    await write_events(sessions, [*first, theirs])
    await seal_all(audit_sessions)
    written = await checkpoint(audit_sessions, [tenant.id, other_tenant.id], key_dir)
    mine = next(row for row in written if row["tenant_id"] == tenant.id)
    assert (mine["first_seq"], mine["seq"]) == (1, 5)
    second = [make_event(tenant.id) for _ in range(3)]
    await write_events(sessions, second)
    await seal_all(audit_sessions)
    [later] = await checkpoint(audit_sessions, [tenant.id], key_dir)
    assert (later["first_seq"], later["seq"]) == (6, 8)  # the range after the previous checkpoint

    auditor = auditor_of(tenant)
    response = await get(client, sessions, settings, auditor, f"/proofs/{first[2].id}")
    assert response.status_code == 200, response.text
    proof = response.json()
    assert (proof["leaf_index"], proof["tree_size"], len(proof["audit_path"])) == (2, 5, 3)
    assert proof["event"]["seq"] == 3
    assert proof["checkpoint"]["merkle_root"] == mine["merkle_root"].hex()
    # Nothing of another practice, and no other event of this one, rides in the proof.
    assert str(other_tenant.id) not in response.text
    assert all(str(e.id) not in response.text for e in first if e is not first[2])

    ok = run_verifier(proof, tmp_path, key_dir)
    assert ok.returncode == 0, ok.stdout
    assert "inclusion proof: VERIFIED" in ok.stdout
    in_second = (await get(client, sessions, settings, auditor, f"/proofs/{second[1].id}")).json()
    assert (in_second["checkpoint"]["first_seq"], in_second["leaf_index"]) == (6, 1)
    assert run_verifier(in_second, tmp_path, key_dir).returncode == 0

    # The event edited (its outcome), with its hash left as it was: the content no longer matches.
    edited = json.loads(json.dumps(proof))
    record = json.loads(base64.b64decode(edited["event"]["record"]))
    record["outcome"] = "4"
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    edited["event"]["record"] = base64.b64encode(canonical).decode()
    bad = run_verifier(edited, tmp_path, key_dir)
    assert bad.returncode == 1
    assert "edited" in bad.stdout
    # ...and with a hash recomputed to match: the path no longer leads to the signed root.
    import hashlib

    edited["event"]["hash"] = hashlib.sha256(
        bytes.fromhex(edited["event"]["prev_hash"]) + canonical
    ).hexdigest()
    rehashed = run_verifier(edited, tmp_path, key_dir)
    assert rehashed.returncode == 1
    assert "does not lead" in rehashed.stdout
    # A path hash flipped; another leaf index; a root swapped in the checkpoint (its signature fails).
    flipped = json.loads(json.dumps(proof))
    flipped["audit_path"][0] = ("0" if flipped["audit_path"][0][0] != "0" else "1") + flipped["audit_path"][
        0
    ][1:]
    assert "does not lead" in run_verifier(flipped, tmp_path, key_dir).stdout
    moved = {**proof, "leaf_index": 3}
    assert run_verifier(moved, tmp_path, key_dir).returncode == 1
    forged = json.loads(json.dumps(proof))
    forged["checkpoint"]["merkle_root"] = in_second["checkpoint"]["merkle_root"]
    result = run_verifier(forged, tmp_path, key_dir)
    assert result.returncode == 1
    assert "signature does not verify" in result.stdout


async def test_proofs_are_for_the_auditor_of_that_practice_only(  # noqa: PLR0917 - fixtures
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    audit_sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    tenant: Tenant,
    other_tenant: Tenant,
    make_event: MakeEvent,
    key_dir: Path,
) -> None:
    event = make_event(tenant.id)
    await write_events(sessions, [event])
    path = f"/proofs/{event.id}"
    # Not sealed yet, then sealed but under no checkpoint: 409, and says why.
    assert (await get(client, sessions, settings, auditor_of(tenant), path)).status_code == 409
    await seal_all(audit_sessions)
    assert (await get(client, sessions, settings, auditor_of(tenant), path)).status_code == 409
    await checkpoint(audit_sessions, [tenant.id], key_dir)
    assert (await get(client, sessions, settings, auditor_of(tenant), path)).status_code == 200
    # The auditor of another practice: the same 404 as an id that does not exist.
    other = await get(client, sessions, settings, auditor_of(other_tenant), path)
    unknown = await get(client, sessions, settings, auditor_of(other_tenant), f"/proofs/{uuid.uuid4()}")
    assert other.status_code == unknown.status_code == 404
    assert {k: v for k, v in other.json().items() if k != "trace_id"} == {
        k: v for k, v in unknown.json().items() if k != "trace_id"
    }
    for who in (user_principal(Role.PRACTICE_OWNER, home_tenant=tenant.id), user_principal(Role.CODER)):
        assert (await get(client, sessions, settings, who, path)).status_code == 403


async def test_version_1_checkpoints_still_verify(  # noqa: PLR0917 - fixtures
    sessions: async_sessionmaker[AsyncSession],
    audit_sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    make_event: MakeEvent,
    key_dir: Path,
    tmp_path: Path,
) -> None:
    """A checkpoint written before roots existed: signed over the head alone, verified as before, in the
    database and offline, and proofs of its events say there is none."""
    await write_events(sessions, [make_event(tenant.id) for _ in range(2)])
    await seal_all(audit_sessions)
    signer = load_signer(key_dir, create=True)
    context = TenantContext.single(TenantId(tenant.id))
    async with tenant_transaction(audit_sessions, context) as session:
        seq, head = (await repository.chain_heads(session))[tenant.id]
        created_at = utcnow()
        message = checkpoint_message(
            tenant_id=tenant.id, seq=seq, hash_=head, created_at=created_at, key_id=signer.key_id
        )
        assert message.startswith(b"rcm-audit-checkpoint-v1\n")
        row = {
            "tenant_id": tenant.id,
            "seq": seq,
            "hash": head,
            "created_at": created_at,
            "key_id": signer.key_id,
            "signature": signer.sign(message),
        }
        await repository.insert_checkpoint(session, row)
    async with tenant_transaction(sessions, context) as session:
        [stored] = await repository.checkpoints(session, [tenant.id])
        report = await verify(
            session, [tenant.id], public_keys={signer.key_id: signer.private_key.public_key()}
        )
        assert await repository.covering_checkpoint(session, tenant.id, 1) is None
    assert stored["merkle_root"] is None
    assert report.ok, report.for_tenant(tenant.id).problems
    document = checkpoint_document(stored)
    assert "merkle_root" not in document

    from audit.verify_export import Report, check_checkpoints

    lines = tmp_path / "checkpoints.jsonl"
    lines.write_text(json.dumps(document) + "\n")
    offline = Report(tenants={str(tenant.id)})
    check_checkpoints(
        lines,
        {signer.key_id: signer.private_key.public_key()},
        {(str(tenant.id), seq): head},
        offline,
    )
    assert (offline.problems, offline.checkpoints_ok) == ([], 1)


@pytest.mark.parametrize("field", ["merkle_root", "first_seq"])
async def test_a_version_2_checkpoint_signs_its_range_and_root(  # noqa: PLR0917 - fixtures
    sessions: async_sessionmaker[AsyncSession],
    audit_sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    make_event: MakeEvent,
    key_dir: Path,
    field: str,
) -> None:
    await write_events(sessions, [make_event(tenant.id) for _ in range(3)])
    await seal_all(audit_sessions)
    [row] = await checkpoint(audit_sessions, [tenant.id], key_dir)
    signer = load_signer(key_dir, create=False)
    keys = {signer.key_id: signer.private_key.public_key()}
    from rcm.audit.checkpoints import signature_valid

    assert signature_valid(row, keys) is True
    changed = {**row, field: 2 if field == "first_seq" else bytes(32)}
    assert signature_valid(changed, keys) is False
