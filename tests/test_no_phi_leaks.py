"""Canary PHI: values that exist nowhere else are sent through the API, then searched for in every log
record, every span, every audit row, every error body, and in a pg_dump of the database."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from rcm.config import Settings
from rcm.demo import seed_demo
from rcm.kit.telemetry import configure_tracing
from tests.support import Api, encounter_payload, patient_payload

CANARIES = {
    "mrn": "CANARYMRN7731",
    "given_name": "Qzxcanarygiven",
    "family_name": "Qzxcanaryfamily",
    "phone": "+1 555 0177 7731",
    "member_id": "CANARYMEMBER7731",
    "documentation": "Qzxcanarynote patient reports canary symptoms",
}


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    configure_tracing("rcm-test", None, extra_processor=SimpleSpanProcessor(exporter))
    return exporter


def _span_text(exporter: InMemorySpanExporter) -> str:
    parts = []
    for span in exporter.get_finished_spans():
        parts.append(span.name)
        parts.extend(f"{k}={v}" for k, v in (span.attributes or {}).items())
        for event in span.events:
            parts.append(event.name)
            parts.extend(f"{k}={v}" for k, v in (event.attributes or {}).items())
    return "\n".join(parts)


async def test_canary_phi_never_leaves_the_encrypted_columns(
    practice_api: Api,
    spans: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
    owner_engine: AsyncEngine,
    admin_url: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    patient = patient_payload(
        mrn=CANARIES["mrn"],
        given_name=CANARIES["given_name"],
        family_name=CANARIES["family_name"],
        phone=CANARIES["phone"],
    )
    payload = encounter_payload(patient=patient, documentation=CANARIES["documentation"])
    payload["coverage"]["member_id"] = CANARIES["member_id"]
    created = await practice_api.post("/encounters", payload)
    assert created.status_code == 201, created.text
    body = created.json()
    # The API itself returns the values to their owner...
    assert body["documentation"] == CANARIES["documentation"]
    read = (await practice_api.get(f"/patients/{body['patient_id']}")).json()
    assert read["family_name"] == CANARIES["family_name"]
    found = (await practice_api.post("/patients/search", {"mrn": CANARIES["mrn"]}, key=None)).json()
    assert [p["id"] for p in found["items"]] == [body["patient_id"]]
    # ...and errors about them do not echo them.
    bad = dict(payload, place_of_service="XX")
    refused = await practice_api.post("/encounters", bad)
    assert refused.status_code == 422
    duplicate = await practice_api.post("/patients", patient)
    assert duplicate.status_code == 409

    logs = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    traces = _span_text(spans)
    async with owner_engine.connect() as conn:
        audit_rows = "\n".join(
            str(tuple(r)) for r in await conn.execute(text("SELECT * FROM rcm.audit_event"))
        )
    assert traces, "no spans were captured: the check would prove nothing"
    assert audit_rows, "no audit rows: the check would prove nothing"
    for name, value in CANARIES.items():
        assert value not in logs, f"{name} in logs"
        assert value not in traces, f"{name} in spans"
        assert value not in audit_rows, f"{name} in audit events"
        assert value not in refused.text, f"{name} in an error body"
        assert value not in duplicate.text, f"{name} in an error body"

    dump = _pg_dump(admin_url)
    assert "CREATE TABLE rcm.patient" in dump
    for name, value in CANARIES.items():
        assert value not in dump, f"{name} in pg_dump"
        assert value.encode().hex() not in dump, f"{name} in pg_dump (hex)"


def _pg_dump(admin_url: str) -> str:
    import pgserver

    bundled = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_dump"
    binary = str(bundled) if bundled.exists() else shutil.which("pg_dump")
    assert binary, "no pg_dump binary"
    from sqlalchemy.engine import make_url

    url = make_url(admin_url)
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    result = subprocess.run(  # noqa: S603 - our own pg_dump binary and test database URL
        [binary, "--dbname", dsn, "--schema", "rcm"], capture_output=True, text=True, check=True
    )
    return result.stdout


async def test_pg_dump_of_the_demo_database_holds_none_of_the_phi_the_api_returns(
    settings: Settings, client: AsyncTestClient[Litestar], admin_url: str
) -> None:
    """The issue's own check, on the demo data: every PHI value the API hands back for the demo practices'
    patients, coverages and encounters is absent from a pg_dump."""
    await seed_demo(settings)
    clients = json.loads((settings.data_dir / "demo-clients.json").read_text())
    values: set[str] = set()
    for slug, credentials in clients.items():
        token_response = await client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(credentials["client_id"], credentials["client_secret"]),
        )
        assert token_response.status_code == 200, token_response.text
        api = Api(client, token_response.json()["access_token"], slug)
        encounters = (await api.get("/encounters", {"limit": 200})).json()["items"]
        assert encounters, slug
        for summary in encounters:
            encounter = (await api.get(f"/encounters/{summary['id']}")).json()
            patient = (await api.get(f"/patients/{encounter['patient_id']}")).json()
            coverages = (await api.get(f"/patients/{encounter['patient_id']}/coverages")).json()
            values |= {encounter["documentation"], patient["mrn"], patient["birth_date"]}
            values |= {f"{patient['given_name']} {patient['family_name']}", patient["family_name"]}
            values |= {c["member_id"] for c in coverages}
    values.discard(None)  # type: ignore[arg-type]
    assert len(values) > 20
    dump = _pg_dump(admin_url)
    leaked = sorted(v for v in values if v in dump)
    assert leaked == []
