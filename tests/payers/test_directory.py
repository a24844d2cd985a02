"""The payer directory (loaded by the operator, idempotent, strict) and practices' enrollment written from
their manifests: a payer the directory lacks is refused by its pointer; credentials stay references."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.kit.db import platform_transaction
from rcm.kit.errors import InvalidInput
from rcm.payers.directory import read_directory, shipped_directory
from rcm.payers.service import load_directory
from rcm.tenancy.manifest import validate_manifest
from rcm.tenancy.service import apply_manifest


async def test_the_shipped_directory_loads_once(admin_url: str, owner_engine: AsyncEngine) -> None:
    await load_directory(admin_url)
    again = await load_directory(admin_url)
    shipped = read_directory(shipped_directory())
    assert (again.added, again.changed, again.unchanged) == (0, 0, len(shipped.payers))
    async with owner_engine.connect() as conn:
        found = (
            await conn.execute(
                text(
                    "SELECT id, claim_filing_indicator, claims_connector FROM rcm.payer WHERE id = 'DEMO-MCR'"
                )
            )
        ).all()
    assert found == [("DEMO-MCR", "MB", "sandbox")]


async def test_a_changed_payer_is_updated_and_none_removed(admin_url: str, tmp_path: Path) -> None:
    pid = f"T{uuid.uuid4().hex[:8].upper()}"
    path = tmp_path / "directory.yaml"
    path.write_text(f"payers:\n  - {{id: {pid}, name: Test Payer, claim_filing_indicator: CI}}\n")
    assert (await load_directory(admin_url, path)).added == 1
    path.write_text(f"payers:\n  - {{id: {pid}, name: Test Payer Renamed, claim_filing_indicator: CI}}\n")
    change = await load_directory(admin_url, path)
    assert (change.added, change.changed) == (0, 1)


def test_a_bad_directory_is_refused_field_by_field(tmp_path: Path) -> None:
    path = tmp_path / "directory.yaml"
    path.write_text(
        "payers:\n"
        "  - {id: OK1, name: A, claim_filing_indicator: XX}\n"
        "  - {id: OK2, name: B, claim_filing_indicator: MB, status_inquiry_days: '30', surprise: 1}\n"
    )
    with pytest.raises(InvalidInput) as refused:
        read_directory(path)
    pointers = {e.pointer for e in refused.value.errors}
    assert pointers == {
        "/payers/0/claim_filing_indicator",
        "/payers/1/status_inquiry_days",
        "/payers/1/surprise",
    }


def test_the_load_command_names_the_bad_field(tmp_path: Path) -> None:
    from rcm.cli import main

    path = tmp_path / "directory.yaml"
    path.write_text("payers:\n  - {id: 'bad id', name: A, claim_filing_indicator: MB}\n")
    result = CliRunner().invoke(
        main, ["payers", "load", str(path)], env={"RCM_DATABASE_URL": "postgresql://x@127.0.0.1:1/x"}
    )
    assert result.exit_code == 2
    assert "/payers/0/id" in result.output


async def test_manifest_payers_become_enrollments(
    control_sessions: async_sessionmaker[AsyncSession], owner_engine: AsyncEngine, admin_url: str
) -> None:
    await load_directory(admin_url)
    slug = f"enroll-{uuid.uuid4().hex[:8]}"
    document = {
        "slug": slug,
        "name": "Enrollment practice",
        "billing_provider": {"npi": "1003000126", "name": "Test Group"},
        "payers": [
            {"payer_id": "DEMO-MCR", "name": "Medicare", "credentials_reference": "file:clearinghouse/demo"},
            {"payer_id": "DEMO-AET", "name": "Aetna", "submitter_id": "ETIN42", "timely_filing_days": 90},
        ],
    }
    async with platform_transaction(control_sessions) as session:
        tenant, _ = await apply_manifest(session, validate_manifest(document))

    async def enrolled() -> list[tuple[str, ...]]:
        async with owner_engine.connect() as conn:
            result = await conn.execute(
                text(
                    "SELECT payer_id, submitter_id, receiver_id, credentials_reference, timely_filing_days"
                    " FROM rcm.payer_enrollment WHERE tenant_id = :t ORDER BY payer_id"
                ),
                {"t": tenant.id},
            )
            return [tuple(row) for row in result]

    assert await enrolled() == [
        ("DEMO-AET", "ETIN42", "DEMO-AET", None, 90),
        ("DEMO-MCR", "1003000126", "DEMO-MCR", "file:clearinghouse/demo", None),
    ]
    # Re-applied without Aetna: its enrollment goes; Medicare's changes in place.
    document["payers"] = [{"payer_id": "DEMO-MCR", "name": "Medicare", "receiver_id": "CLEARINGHOUSE1"}]
    async with platform_transaction(control_sessions) as session:
        await apply_manifest(session, validate_manifest(document))
    assert await enrolled() == [("DEMO-MCR", "1003000126", "CLEARINGHOUSE1", None, None)]

    # A payer the directory lacks: refused by its pointer, and nothing of the manifest applied.
    document["payers"] = [{"payer_id": "NOT-LISTED", "name": "Nobody"}]
    with pytest.raises(InvalidInput) as refused:
        async with platform_transaction(control_sessions) as session:
            await apply_manifest(session, validate_manifest(document))
    assert [(e.pointer, e.detail) for e in refused.value.errors] == [
        ("/payers/0/payer_id", "is not in the payer directory (load it with `rcm payers load`)")
    ]
    assert await enrolled() == [("DEMO-MCR", "1003000126", "CLEARINGHOUSE1", None, None)]


def test_a_credential_value_is_not_a_reference() -> None:
    with pytest.raises(InvalidInput) as refused:
        validate_manifest(
            {
                "slug": "refs",
                "name": "Refs",
                "billing_provider": {"npi": "1003000126", "name": "Test"},
                "payers": [
                    {"payer_id": "DEMO-MCR", "name": "M", "credentials_reference": "hunter2 password"}
                ],
            }
        )
    assert [e.pointer for e in refused.value.errors] == ["/payers/0/credentials_reference"]


def test_an_endpoint_the_connectors_cannot_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "directory.yaml"
    path.write_text(
        "payers:\n"
        "  - {id: P1, name: A, claim_filing_indicator: CI, claims: {connector: sftp, endpoint: 'ftp://x/y'}}\n"
        "  - {id: P2, name: B, claim_filing_indicator: CI,"
        " claims: {connector: sftp, endpoint: 'sftp://u:hunter2@host/in'}}\n"
    )
    with pytest.raises(InvalidInput) as refused:
        read_directory(path)
    assert [e.pointer for e in refused.value.errors] == ["/payers/0/claims", "/payers/1/claims"]
    assert "hunter2" not in str([e.detail for e in refused.value.errors])
