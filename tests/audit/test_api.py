"""``/api/v1/audit`` over HTTP with real access tokens: who may search, export and verify, what each sees,
and that every one of those accesses (and every refusal) lands in the log under the response's request id."""

from __future__ import annotations

import csv
import dataclasses
import io
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.auditevent import AuditEvent as FhirAuditEvent
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.audit.events import Action, Outcome
from rcm.audit.service import CSV_COLUMNS
from rcm.config import Settings
from rcm.identity.principal import Principal, Role
from rcm.identity.scopes import ADMIN, AUDIT_READ
from rcm.identity.testing import mint_access_token, user_principal
from rcm.kit.tenant import PLATFORM_TENANT
from rcm.tenancy.models import Tenant
from tests.audit.conftest import MakeEvent, seal_all, write_events
from tests.support import Api, patient_payload

Client = AsyncTestClient[Litestar]
Mint = Callable[[Principal], Awaitable[str]]
BASE = "/api/v1/audit"


@pytest.fixture
def mint(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> Mint:
    async def _mint(principal: Principal) -> str:
        return await mint_access_token(principal, sessions=sessions, settings=settings)

    return _mint


def auditor_of(*tenants: Tenant, scopes: frozenset[str] | None = None) -> Principal:
    return user_principal(Role.AUDITOR, auditor_tenants=tuple(t.id for t in tenants), scopes=scopes)


async def call(
    client: Client, mint: Mint, who: Principal, path: str, params: dict[str, Any] | None = None
) -> httpx.Response:
    token = await mint(who)
    method = "POST" if path == "/verify" else "GET"  # a verification reads every event: never on a GET
    return await client.request(
        method, f"{BASE}{path}", params=params, headers={"Authorization": f"Bearer {token}"}
    )


async def logged(owner_engine: AsyncEngine, request_id: str) -> list[dict[str, Any]]:
    """Every stored event of one request (read beneath RLS, as the superuser)."""
    async with owner_engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT * FROM rcm.audit_event WHERE request_id = :r ORDER BY tenant_id, occurred_at, id"),
            {"r": request_id},
        )
        return [dict(row._mapping) for row in rows]


# --- who may call ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/events", "/events.csv", "/events.ndjson", "/verify"])
async def test_an_auditor_token_without_audit_read_is_refused_and_logged(
    client: Client, mint: Mint, tenant: Tenant, owner_engine: AsyncEngine, path: str
) -> None:
    response = await call(client, mint, auditor_of(tenant, scopes=frozenset()), path)
    assert response.status_code == 403
    assert response.json()["title"] == "Scope required"
    [denied] = await logged(owner_engine, response.headers["x-request-id"])
    assert (denied["event_type"], denied["outcome"], denied["detail"]) == (
        "access.denied",
        Outcome.SERIOUS_FAILURE.value,
        {"reason": "missing_scope"},
    )


@pytest.mark.parametrize("path", ["/events", "/events.csv", "/events.ndjson"])
async def test_search_and_export_are_for_auditors_only(
    client: Client, mint: Mint, owner_engine: AsyncEngine, path: str
) -> None:
    for who in (user_principal(Role.CODER, mfa=True), user_principal(Role.ADMIN, mfa=True)):
        response = await call(client, mint, who, path)
        assert response.status_code == 403
        assert response.json()["title"] == "Role required"
        [denied] = await logged(owner_engine, response.headers["x-request-id"])
        assert denied["detail"] == {"reason": "missing_role"}


async def test_verify_admits_an_auditor_and_an_mfa_admin_only(
    client: Client, mint: Mint, tenant: Tenant, other_tenant: Tenant, owner_engine: AsyncEngine
) -> None:
    mine = await call(client, mint, auditor_of(tenant), "/verify")
    assert mine.status_code == 200
    assert [t["tenant_id"] for t in mine.json()["tenants"]] == [str(tenant.id)]

    no_mfa = await call(client, mint, user_principal(Role.ADMIN, mfa=False), "/verify")
    assert no_mfa.status_code == 403
    assert no_mfa.json()["title"] == "Multi-factor authentication required"
    [denied] = await logged(owner_engine, no_mfa.headers["x-request-id"])
    assert denied["detail"] == {"reason": "mfa_required"}

    no_admin_scope = user_principal(Role.ADMIN, mfa=True, scopes=frozenset({AUDIT_READ}))
    assert (await call(client, mint, no_admin_scope, "/verify")).status_code == 403
    assert (await call(client, mint, user_principal(Role.CODER, mfa=True), "/verify")).status_code == 403

    admin = await call(
        client, mint, user_principal(Role.ADMIN, mfa=True, scopes=frozenset({ADMIN})), "/verify"
    )
    assert admin.status_code == 200
    verified = {t["tenant_id"] for t in admin.json()["tenants"]}
    assert {str(tenant.id), str(other_tenant.id), str(PLATFORM_TENANT)} <= verified


async def test_an_auditor_without_tenants_is_refused_and_logged(
    client: Client, mint: Mint, owner_engine: AsyncEngine
) -> None:
    nobody = dataclasses.replace(user_principal(Role.AUDITOR), all_tenants=False)
    response = await call(client, mint, nobody, "/events")
    assert response.status_code == 403
    [denied] = await logged(owner_engine, response.headers["x-request-id"])
    assert denied["detail"] == {"reason": "no_auditor_tenants"}


# --- what an auditor sees ---------------------------------------------------------------------------------


async def test_search_filters_and_cursor(
    client: Client,
    mint: Mint,
    sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    make_event: MakeEvent,
) -> None:
    patient = uuid.uuid4()
    reads = [make_event(tenant.id, patient_ids=(patient,)) for _ in range(5)]
    others = [
        make_event(tenant.id, event_type="patient.create", action=Action.CREATE),
        make_event(tenant.id, event_type="access.denied", outcome=Outcome.SERIOUS_FAILURE),
    ]
    await write_events(sessions, [*reads, *others])
    auditor = auditor_of(tenant)

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"patient_id": str(patient), "limit": 2}
        if cursor:
            params["cursor"] = cursor
        body = (await call(client, mint, auditor, "/events", params)).json()
        seen.extend(item["id"] for item in body["items"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    # Newest first, each event once, across three pages of two.
    assert seen == [str(e.id) for e in reversed(reads)]
    assert pages == 3

    by_action = (await call(client, mint, auditor, "/events", {"action": "C"})).json()["items"]
    assert [i["id"] for i in by_action] == [str(others[0].id)]
    by_outcome = (await call(client, mint, auditor, "/events", {"outcome": "8"})).json()["items"]
    assert [i["id"] for i in by_outcome] == [str(others[1].id)]
    window = {
        "event_type": "patient.read",
        "since": (reads[2].occurred_at - timedelta(microseconds=1)).isoformat(),
        "until": reads[3].occurred_at.isoformat(),  # exclusive
    }
    in_window = (await call(client, mint, auditor, "/events", window)).json()["items"]
    assert [i["id"] for i in in_window] == [str(reads[2].id)]


async def test_an_auditor_of_one_tenant_never_sees_another(  # noqa: PLR0917 - pytest fixtures
    client: Client,
    mint: Mint,
    sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    other_tenant: Tenant,
    make_event: MakeEvent,
) -> None:
    theirs = make_event(other_tenant.id)
    await write_events(sessions, [make_event(tenant.id), theirs, make_event(tenant.id)])
    auditor = auditor_of(tenant)
    mine, theirs_id = str(tenant.id), str(other_tenant.id)

    items = (await call(client, mint, auditor, "/events", {"limit": 500})).json()["items"]
    assert items
    assert {i["tenant_id"] for i in items} == {mine}
    # Naming the other tenant's patient finds nothing: RLS, not the filter, decides what exists.
    by_patient = await call(client, mint, auditor, "/events", {"patient_id": str(theirs.patient_ids[0])})
    assert by_patient.json()["items"] == []

    rows = list(csv.DictReader(io.StringIO((await call(client, mint, auditor, "/events.csv")).text)))
    assert rows
    assert {r["tenant_id"] for r in rows} == {mine}
    ndjson = (await call(client, mint, auditor, "/events.ndjson")).text
    assert ndjson
    assert theirs_id not in ndjson
    verified = (await call(client, mint, auditor, "/verify")).json()["tenants"]
    assert [t["tenant_id"] for t in verified] == [mine]


async def test_exports_are_csv_and_fhir_ndjson(
    client: Client,
    mint: Mint,
    sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    make_event: MakeEvent,
) -> None:
    events = [make_event(tenant.id) for _ in range(3)]
    await write_events(sessions, events)
    auditor = auditor_of(tenant)

    exported = await call(client, mint, auditor, "/events.csv", {"event_type": "patient.read"})
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert 'filename="audit-events.csv"' in exported.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(exported.text)))
    assert tuple(table[0]) == CSV_COLUMNS
    assert [row[CSV_COLUMNS.index("id")] for row in table[1:]] == [str(e.id) for e in events]

    fhir = await call(client, mint, auditor, "/events.ndjson", {"event_type": "patient.read"})
    assert fhir.headers["content-type"].startswith("application/fhir+ndjson")
    lines = fhir.text.splitlines()
    assert len(lines) == 3
    for line, event in zip(lines, events, strict=True):
        resource = FhirAuditEvent.model_validate_json(line)
        assert resource.id == str(event.id)
        assert resource.action == "R"
        assert resource.outcome == "0"


@pytest.mark.parametrize(
    ("path", "event_type", "detail"),
    [
        ("/events", "audit.search", {"filter.event_type": "patient.read", "limit": 100, "returned": 1}),
        ("/events.csv", "audit.export", {"filter.event_type": "patient.read", "format": "csv"}),
        ("/events.ndjson", "audit.export", {"filter.event_type": "patient.read", "format": "fhir-ndjson"}),
        ("/verify", "audit.verify", {"ok": True, "events": 1, "problems": 0, "tenants": 1}),
    ],
)
async def test_each_search_export_and_verify_is_itself_audited(  # noqa: PLR0917 - fixtures
    client: Client,
    mint: Mint,
    sessions: async_sessionmaker[AsyncSession],
    audit_sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    make_event: MakeEvent,
    owner_engine: AsyncEngine,
    path: str,
    event_type: str,
    detail: dict[str, object],
) -> None:
    await write_events(sessions, [make_event(tenant.id)])
    await seal_all(audit_sessions)
    auditor = auditor_of(tenant)
    params = None if path == "/verify" else {"event_type": "patient.read"}
    response = await call(client, mint, auditor, path, params)
    assert response.status_code == 200
    [event] = await logged(owner_engine, response.headers["x-request-id"])
    assert event["tenant_id"] == tenant.id
    assert (event["event_type"], event["action"], event["outcome"]) == (event_type, "E", "0")
    assert event["actor_subject"] == auditor.subject
    assert detail.items() <= event["detail"].items()


async def test_an_admin_verify_is_audited_in_every_chain_it_read(
    client: Client, mint: Mint, tenant: Tenant, other_tenant: Tenant, owner_engine: AsyncEngine
) -> None:
    admin = user_principal(Role.ADMIN, mfa=True, scopes=frozenset({ADMIN}))
    response = await call(client, mint, admin, "/verify")
    assert response.status_code == 200
    events = await logged(owner_engine, response.headers["x-request-id"])
    assert {e["event_type"] for e in events} == {"audit.verify"}
    assert {e["tenant_id"] for e in events} == {uuid.UUID(t["tenant_id"]) for t in response.json()["tenants"]}
    assert {tenant.id, other_tenant.id, PLATFORM_TENANT} <= {e["tenant_id"] for e in events}


# --- query parameters never make a 500 ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/events", "/events.csv", "/events.ndjson"])
@pytest.mark.parametrize(
    ("params", "pointers"),
    [
        ({"since": "2025-01-01T00:00:00"}, ["query:since"]),
        ({"until": "2025-01-01T09:30:00"}, ["query:until"]),
        ({"since": "2025-01-01", "until": "2025-02-01"}, ["query:since", "query:until"]),
        ({"since": "0001-01-01T00:00:00+05:00"}, ["query:since"]),  # before year 1 in UTC
    ],
)
async def test_time_filters_without_a_time_zone_are_422(  # noqa: PLR0917 - fixtures and parameters
    client: Client, mint: Mint, tenant: Tenant, path: str, params: dict[str, str], pointers: list[str]
) -> None:
    response = await call(client, mint, auditor_of(tenant), path, params)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert [e["pointer"] for e in body["errors"]] == pointers
    for value in params.values():
        assert value not in response.text  # input is never echoed


@pytest.mark.parametrize(
    "params",
    [
        {"since": "2025-01-01T00:00:00Z", "until": "2025-01-01T00:00:00+02:00"},
        {"since": "2025-01-01T00:00:00-05:00"},
    ],
)
async def test_time_filters_with_an_offset_are_accepted(
    client: Client, mint: Mint, tenant: Tenant, params: dict[str, str]
) -> None:
    assert (await call(client, mint, auditor_of(tenant), "/events", params)).status_code == 200


def _cursor(raw: str) -> str:
    import base64

    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "é",
        _cursor("{}"),
        _cursor('["2025-01-01T00:00:00.000000Z", 5, 1]'),  # tenant not a string
        _cursor(f'["2025-01-01T00:00:00.000000Z", "{uuid.uuid4()}", 99999999999999999999]'),  # > bigint
        _cursor(f'["2025-01-01T00:00:00.000000Z", "{uuid.uuid4()}", "1"]'),
        _cursor(f'["2025-01-01", "{uuid.uuid4()}", 1]'),
    ],
)
async def test_a_forged_cursor_is_422(client: Client, mint: Mint, tenant: Tenant, cursor: str) -> None:
    response = await call(client, mint, auditor_of(tenant), "/events", {"cursor": cursor})
    assert response.status_code == 422
    assert [e["pointer"] for e in response.json()["errors"]] == ["query:cursor"]


@pytest.mark.parametrize(
    "params",
    [
        {"actor": "a\x00b"},
        {"event_type": "x\x00"},
        {"resource_type": "\x00"},
        {"patient_id": "not-a-uuid"},
        {"action": "Z"},
        {"outcome": "99"},
        {"limit": "0"},
        {"limit": "501"},
        {"limit": "many"},
        {"since": "yesterday"},
    ],
)
async def test_malformed_query_values_are_client_errors(
    client: Client, mint: Mint, tenant: Tenant, params: dict[str, str]
) -> None:
    response = await call(client, mint, auditor_of(tenant), "/events", params)
    assert 400 <= response.status_code < 500


# --- one request id, in the response and in the log ---------------------------------------------------------


async def test_a_phi_read_is_logged_under_the_response_request_id(
    client: Client, practice_api: Api, owner_engine: AsyncEngine
) -> None:
    created = (await practice_api.post("/patients", patient_payload())).json()
    for sent in ("caller-chosen-id-0001", "x" * 100, "bad id with spaces"):
        response = await client.get(
            practice_api.url(f"/patients/{created['id']}"),
            headers={**practice_api.headers, "X-Request-ID": sent},
        )
        assert response.status_code == 200
        request_id = response.headers["x-request-id"]
        # A sane id is kept; an oversized or odd one is replaced, and the log says what the caller was told.
        assert (request_id == sent) is (sent == "caller-chosen-id-0001")
        [event] = await logged(owner_engine, request_id)
        assert event["event_type"] == "patient.read"
        assert event["patient_ids"] == [uuid.UUID(created["id"])]


async def test_denials_are_logged_under_the_response_request_id(
    client: Client, mint: Mint, practice_api: Api, other_practice_api: Api, owner_engine: AsyncEngine
) -> None:
    forbidden = await call(client, mint, user_principal(Role.CODER), "/events")
    no_token = await client.get(f"{BASE}/events", headers={"X-Request-ID": "x" * 128})
    not_yours = await client.get(
        practice_api.url("/patients", slug=other_practice_api.slug), headers=practice_api.headers
    )
    for response, status, reason in (
        (forbidden, 403, "missing_role"),
        (no_token, 401, "no_token"),
        (not_yours, 404, None),
    ):
        assert response.status_code == status
        assert response.headers["x-request-id"] != "x" * 128  # too long to be kept
        [event] = await logged(owner_engine, response.headers["x-request-id"])
        assert event["event_type"] == "access.denied"
        assert event["detail"].get("reason") == reason


async def test_events_show_whether_the_chainer_sealed_them(  # noqa: PLR0917 - pytest fixtures
    client: Client,
    mint: Mint,
    sessions: async_sessionmaker[AsyncSession],
    audit_sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    make_event: MakeEvent,
) -> None:
    event = make_event(tenant.id)
    await write_events(sessions, [event])
    auditor = auditor_of(tenant)

    async def shown() -> dict[str, Any]:
        items = (await call(client, mint, auditor, "/events", {"event_type": "patient.read"})).json()["items"]
        return next(i for i in items if i["id"] == str(event.id))

    pending = await shown()
    assert (pending["sealed"], pending["seq"], pending["hash"]) == (False, None, None)
    verified = (await call(client, mint, auditor, "/verify")).json()
    assert verified["ok"] is True  # pending is not broken
    assert verified["tenants"][0]["unsealed"] >= 1
    await seal_all(audit_sessions)
    sealed = await shown()
    assert sealed["sealed"] is True
    assert sealed["seq"] == 1
    assert len(bytes.fromhex(sealed["hash"])) == 32
