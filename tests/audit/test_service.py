"""Auditors' search and exports, the audit of those accesses, and the offline verifier on real exports."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from audit.verify_export import verify_file
from fhir.resources.R4B.auditevent import AuditEvent as FhirAuditEvent
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit.checkpoints import checkpoint_document, load_signer, write_checkpoints
from rcm.audit.events import Action, Outcome
from rcm.audit.service import CSV_COLUMNS, AuditQuery, export_csv, export_fhir_ndjson, search
from rcm.identity.principal import Principal
from rcm.kit.db import tenant_transaction
from rcm.kit.models import utcnow
from rcm.kit.tenant import TenantContext, TenantId
from rcm.tenancy.models import Tenant
from tests.audit.conftest import MakeEvent, request_info, seal_all, write_events

ROOT = Path(__file__).resolve().parents[2]


def both(tenant: Tenant, other: Tenant) -> TenantContext:
    return TenantContext.system_cross_tenant((TenantId(tenant.id), TenantId(other.id)))


async def _search_all(
    sessions: async_sessionmaker[AsyncSession],
    ctx: TenantContext,
    query: AuditQuery,
    auditor: Principal,
    limit: int,
) -> list[uuid.UUID]:
    seen: list[uuid.UUID] = []
    cursor: str | None = None
    while True:
        async with tenant_transaction(sessions, ctx) as session:
            page, cursor = await search(
                session, query, limit=limit, cursor=cursor, actor=auditor, request=request_info()
            )
        seen.extend(r.id for r in page)
        if cursor is None:
            return seen


async def test_search_filters_and_cursor(  # noqa: PLR0917 - pytest fixtures
    sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    other_tenant: Tenant,
    make_event: MakeEvent,
    coder: Principal,
    auditor: Principal,
) -> None:
    patient = uuid.uuid4()
    document = uuid.uuid4()
    start = utcnow()
    events = [make_event(tenant.id, occurred_at=start + timedelta(milliseconds=i)) for i in range(7)]
    events += [
        make_event(tenant.id, patient_ids=(patient,), occurred_at=start + timedelta(seconds=1)),
        make_event(
            other_tenant.id,
            patient_ids=(patient,),
            event_type="document.create",
            action=Action.CREATE,
            resource_type="document",
            resource_ids=(document,),
            occurred_at=start + timedelta(seconds=2),
        ),
        make_event(
            tenant.id,
            event_type="access.denied",
            action=Action.READ,
            outcome=Outcome.SERIOUS_FAILURE,
            occurred_at=start + timedelta(seconds=3),
        ),
    ]
    await write_events(sessions, events)
    ctx = both(tenant, other_tenant)
    everything = AuditQuery(since=start, until=start + timedelta(seconds=4), event_type=None)

    # Pages of 3 walk all 10 events once each, newest first across both tenants.
    seen = await _search_all(sessions, ctx, AuditQuery(since=start, actor=coder.subject), auditor, limit=3)
    assert len(seen) == len(set(seen)) == 10
    assert seen[0] == events[9].id  # the denial, newest
    assert seen[1] == events[8].id  # the other tenant's

    async def ids(query: AuditQuery, context: TenantContext = ctx) -> set[uuid.UUID]:
        async with tenant_transaction(sessions, context) as session:
            page, _ = await search(
                session, query, limit=100, cursor=None, actor=auditor, request=request_info()
            )
        return {r.id for r in page if r.event_type != "audit.search"}

    assert await ids(AuditQuery(patient_id=patient)) == {events[7].id, events[8].id}
    assert await ids(AuditQuery(resource_id=document)) == {events[8].id}
    assert await ids(AuditQuery(resource_type="document")) == {events[8].id}
    assert await ids(AuditQuery(action=Action.CREATE)) == {events[8].id}
    assert await ids(AuditQuery(outcome=Outcome.SERIOUS_FAILURE)) == {events[9].id}
    assert await ids(AuditQuery(event_type="access.denied")) == {events[9].id}
    window = AuditQuery(since=start + timedelta(seconds=1), until=start + timedelta(seconds=3))
    assert await ids(window) == {events[7].id, events[8].id}
    assert len(await ids(everything)) == 10
    assert await ids(AuditQuery(actor="someone-else")) == set()
    # A single-tenant context never sees the other tenant's events.
    only_mine = await ids(AuditQuery(patient_id=patient), TenantContext.single(TenantId(tenant.id)))
    assert only_mine == {events[7].id}


async def test_search_is_itself_audited_per_tenant(
    sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    other_tenant: Tenant,
    make_event: MakeEvent,
    auditor: Principal,
) -> None:
    patient = uuid.uuid4()
    await write_events(sessions, [make_event(tenant.id)])
    async with tenant_transaction(sessions, both(tenant, other_tenant)) as session:
        await search(
            session,
            AuditQuery(patient_id=patient, event_type="patient.read"),
            limit=10,
            cursor=None,
            actor=auditor,
            request=request_info(),
        )
    async with tenant_transaction(sessions, both(tenant, other_tenant)) as session:
        page, _ = await search(
            session,
            AuditQuery(event_type="audit.search"),
            limit=10,
            cursor=None,
            actor=auditor,
            request=request_info(),
        )
    first = [r for r in page if r.patient_ids == (patient,)]
    assert {r.tenant_id for r in first} == {tenant.id, other_tenant.id}
    audited = first[0]
    assert audited.actor_subject == auditor.subject
    assert audited.actor_roles == ("auditor",)
    assert (audited.action, audited.outcome) == ("E", "0")
    assert audited.detail["filter.event_type"] == "patient.read"
    assert audited.detail["returned"] == 0  # no event of that (random) patient
    assert "limit" in audited.detail


async def _collect(chunks: object) -> bytes:
    out = b""
    async for chunk in chunks:  # type: ignore[attr-defined]
        out += chunk
    return out


@pytest.fixture
async def exported(  # noqa: PLR0917 - pytest fixtures
    sessions: async_sessionmaker[AsyncSession],
    audit_sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    other_tenant: Tenant,
    make_event: MakeEvent,
    auditor: Principal,
    tmp_path: Path,
) -> dict[str, Path]:
    """Both tenants' full chains exported as CSV and NDJSON, with a checkpoint file and public key."""
    hint = make_event(tenant.id, actor=None, actor_hint="=HYPERLINK(evil)", detail={"note": "-1", "ok": True})
    await write_events(
        sessions, [make_event(tenant.id), hint, make_event(other_tenant.id), make_event(tenant.id)]
    )
    keys = tmp_path / "keys"
    ctx = both(tenant, other_tenant)
    await seal_all(audit_sessions)
    async with tenant_transaction(audit_sessions, ctx) as session:
        await write_checkpoints(session, [tenant.id, other_tenant.id], load_signer(keys, create=True))
    async with tenant_transaction(sessions, ctx) as session:
        csv_bytes = await _collect(export_csv(session, AuditQuery(), actor=auditor, request=request_info()))
        ndjson = await _collect(
            export_fhir_ndjson(session, AuditQuery(), actor=auditor, request=request_info())
        )
        from rcm.audit import repository

        cps = [
            checkpoint_document(r)
            for r in await repository.checkpoints(session, [tenant.id, other_tenant.id])
        ]
    paths = {
        "csv": tmp_path / "events.csv",
        "ndjson": tmp_path / "events.ndjson",
        "checkpoints": tmp_path / "checkpoints.jsonl",
        "key": next(keys.glob("*.pub.pem")),
    }
    paths["csv"].write_bytes(csv_bytes)
    paths["ndjson"].write_bytes(ndjson)
    paths["checkpoints"].write_text("".join(json.dumps(c) + "\n" for c in cps))
    return paths


async def test_csv_export_has_every_record_and_defuses_formulas(
    exported: dict[str, Path], tenant: Tenant
) -> None:
    rows = list(csv.reader(io.StringIO(exported["csv"].read_text())))
    assert tuple(rows[0]) == CSV_COLUMNS
    body = rows[1:]
    assert len(body) == 4
    assert all(len(r) == len(CSV_COLUMNS) for r in body)
    hint = next(r for r in body if r[CSV_COLUMNS.index("actor_hint")])
    assert hint[CSV_COLUMNS.index("actor_hint")] == "'=HYPERLINK(evil)"
    assert [int(r[1]) for r in body if r[0] == str(tenant.id)] == [1, 2, 3]


async def test_ndjson_export_is_fhir_r4_audit_events(exported: dict[str, Path]) -> None:
    lines = exported["ndjson"].read_text().splitlines()
    assert len(lines) == 4
    for line in lines:
        resource = FhirAuditEvent.model_validate_json(line)
        assert resource.action in {"C", "R", "U", "D", "E"}
        assert resource.agent[0].requestor is True
        assert resource.recorded is not None
    patients = [
        e for e in json.loads(lines[0])["entity"] if e["what"].get("reference", "").startswith("Patient/")
    ]
    assert len(patients) == 1


async def test_export_is_itself_audited(
    sessions: async_sessionmaker[AsyncSession], exported: dict[str, Path], tenant: Tenant, auditor: Principal
) -> None:
    async with tenant_transaction(sessions, TenantContext.single(TenantId(tenant.id))) as session:
        page, _ = await search(
            session,
            AuditQuery(event_type="audit.export"),
            limit=10,
            cursor=None,
            actor=auditor,
            request=request_info(),
        )
    assert sorted(str(r.detail["format"]) for r in page) == ["csv", "fhir-ndjson"]


@pytest.mark.parametrize("kind", ["csv", "ndjson"])
async def test_offline_verifier_accepts_an_intact_export(exported: dict[str, Path], kind: str) -> None:
    report = verify_file(exported[kind], checkpoints=exported["checkpoints"], public_keys=[exported["key"]])
    assert report.problems == []
    assert (report.records, len(report.tenants), report.checkpoints_ok) == (4, 2, 2)


def test_offline_verifier_runs_standalone_and_catches_an_edit(
    exported: dict[str, Path], tmp_path: Path
) -> None:
    edited = tmp_path / "edited.csv"
    edited.write_text(exported["csv"].read_text().replace("patient.read", "patient.list", 1))
    command = [sys.executable, str(ROOT / "audit" / "verify_export.py")]
    args = ["--checkpoints", str(exported["checkpoints"]), "--public-key", str(exported["key"])]
    intact = subprocess.run(  # noqa: S603 - our own script with paths we made
        [*command, str(exported["ndjson"]), *args], capture_output=True, text=True, check=False
    )
    broken = subprocess.run(  # noqa: S603 - our own script with paths we made
        [*command, str(edited), *args], capture_output=True, text=True, check=False
    )
    assert intact.returncode == 0, intact.stdout
    assert "INTACT" in intact.stdout
    assert broken.returncode == 1
    assert "edited" in broken.stdout


async def test_offline_verifier_catches_dropped_lines_and_forged_checkpoints(
    exported: dict[str, Path], tmp_path: Path
) -> None:
    lines = exported["ndjson"].read_text().splitlines()
    dropped = tmp_path / "dropped.ndjson"
    dropped.write_text("\n".join(lines[:1] + lines[2:]) + "\n")
    report = verify_file(dropped, checkpoints=exported["checkpoints"], public_keys=[exported["key"]])
    assert any("missing" in p for p in report.problems)
    forged = tmp_path / "forged.jsonl"
    docs = [json.loads(line) for line in exported["checkpoints"].read_text().splitlines()]
    docs[0]["seq"] = 2
    forged.write_text("".join(json.dumps(d) + "\n" for d in docs))
    report = verify_file(exported["ndjson"], checkpoints=forged, public_keys=[exported["key"]])
    assert any("signature does not verify" in p for p in report.problems)


async def _export_both(
    sessions: async_sessionmaker[AsyncSession], ctx: TenantContext, auditor: Principal, kind: str
) -> bytes:
    exporter = export_csv if kind == "csv" else export_fhir_ndjson
    async with tenant_transaction(sessions, ctx) as session:
        return await _collect(exporter(session, AuditQuery(), actor=auditor, request=request_info()))


async def _checkpoint_file(
    audit_sessions: async_sessionmaker[AsyncSession], ctx: TenantContext, keys: Path, out: Path
) -> None:
    await seal_all(audit_sessions)
    async with tenant_transaction(audit_sessions, ctx) as session:
        await write_checkpoints(session, ctx.tenant_ids, load_signer(keys, create=True))
        from rcm.audit import repository

        rows = await repository.checkpoints(session, ctx.tenant_ids)
    out.write_text("".join(json.dumps(checkpoint_document(r)) + "\n" for r in rows))  # noqa: ASYNC240


@pytest.mark.parametrize("kind", ["csv", "ndjson"])
async def test_export_then_checkpoint_is_intact_and_a_cut_export_is_not(  # noqa: PLR0917 - fixtures
    sessions: async_sessionmaker[AsyncSession],
    audit_sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    other_tenant: Tenant,
    make_event: MakeEvent,
    auditor: Principal,
    tmp_path: Path,
    kind: str,
) -> None:
    """The export records its own audit.export event, which the next checkpoint covers: a checkpoint
    beyond the export is newer than it, not evidence of a cut (the false "NOT INTACT" of old)."""
    ctx = both(tenant, other_tenant)
    await write_events(sessions, [make_event(tenant.id), make_event(other_tenant.id), make_event(tenant.id)])
    await seal_all(audit_sessions)
    export = tmp_path / f"events.{kind}"
    export.write_bytes(await _export_both(sessions, ctx, auditor, kind))
    exported_at = utcnow().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    await write_events(sessions, [make_event(tenant.id)])  # events after the export, unsealed yet
    checkpoints, keys = tmp_path / "checkpoints.jsonl", tmp_path / "keys"
    await _checkpoint_file(audit_sessions, ctx, keys, checkpoints)
    key = [next(keys.glob("*.pub.pem"))]

    after = verify_file(export, checkpoints=checkpoints, public_keys=key, exported_at=exported_at)
    assert after.problems == []
    assert after.notes  # the newer checkpoints are named, not hidden
    assert after.records == 3

    # Checkpoint first, then export: intact as well, with the checkpoints verified against the export.
    again = tmp_path / f"again.{kind}"
    again.write_bytes(await _export_both(sessions, ctx, auditor, kind))
    before = verify_file(again, checkpoints=checkpoints, public_keys=key, exported_at=utcnow().isoformat())
    assert before.problems == []
    assert before.checkpoints_ok == 2
    assert before.records == 6  # three events, the first export's two audit.export events, one later

    # The same export with its last lines cut: the checkpoints signed before it now say "truncated".
    lines = again.read_text().splitlines()
    cut = tmp_path / f"cut.{kind}"
    sealed = [line for line in lines if '"sealed"' not in line and line.split(",")[1:2] != [""]]
    cut.write_text("\n".join(sealed[:-1]) + "\n")
    exported_late = utcnow().isoformat()
    cut_report = verify_file(cut, checkpoints=checkpoints, public_keys=key, exported_at=exported_late)
    assert any("truncated" in p for p in cut_report.problems), cut_report.problems


async def test_unsealed_events_are_exported_as_such(
    sessions: async_sessionmaker[AsyncSession], tenant: Tenant, make_event: MakeEvent, auditor: Principal
) -> None:
    event = make_event(tenant.id)
    await write_events(sessions, [event])
    ctx = TenantContext.single(TenantId(tenant.id))
    rows = list(csv.DictReader(io.StringIO((await _export_both(sessions, ctx, auditor, "csv")).decode())))
    [row] = [r for r in rows if r["id"] == str(event.id)]
    assert (row["seq"], row["prev_hash"], row["hash"]) == ("", "", "")
    [line] = [
        json.loads(x)
        for x in (await _export_both(sessions, ctx, auditor, "ndjson")).decode().splitlines()
        if str(event.id) in x
    ]
    chain = {e["url"]: e for e in line["extension"][0]["extension"]}
    assert chain["sealed"]["valueBoolean"] is False
    assert "hash" not in chain
