"""Strict input, nothing coerced: each case is a request, the status it gets and what the problem names.

Names are JSON pointers into the body, ``header:<Name>`` for a header and ``query:<name>`` for a query
parameter. Nothing refused may have been written.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.handlers.http_handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.config import Settings
from rcm.identity.principal import Role
from rcm.identity.testing import client_principal, mint_access_token, user_principal
from rcm.kit.strict import MAX_JSON_DEPTH, check_request, is_json_media_type, json_depth_exceeds
from rcm.kit.tenant import TenantId
from tests.support import Api, encounter_payload, patient_payload

TODAY = date.today()


def _days(n: int) -> str:
    return (TODAY + timedelta(days=n)).isoformat()


def _charge(**overrides: Any) -> Callable[[dict[str, Any]], object]:
    def edit(payload: dict[str, Any]) -> None:
        payload["charges"][0].update(overrides)

    return edit


def _patient(**overrides: Any) -> Callable[[dict[str, Any]], object]:
    def edit(payload: dict[str, Any]) -> None:
        payload["patient"].update(overrides)

    return edit


def _top(**overrides: Any) -> Callable[[dict[str, Any]], object]:
    def edit(payload: dict[str, Any]) -> None:
        payload.update(overrides)

    return edit


DEEP = "@@nested@@"


def _nested(depth: int) -> str:
    """A marker replaced by ``depth`` nested arrays once the payload is bytes (json.dumps would recurse)."""
    return f"{DEEP}{depth}"


def _encode(payload: dict[str, Any]) -> bytes:
    def deep(match: re.Match[str]) -> str:
        depth = int(match.group(1))
        return "[" * depth + "1" + "]" * depth

    return re.sub(f'"{DEEP}(\\d+)"', deep, json.dumps(payload)).encode()


@dataclass(frozen=True)
class Case:
    edit: Callable[[dict[str, Any]], object]
    status: int
    names: set[str] = field(default_factory=set)


# Encounter intake (POST /encounters), each case one edit of a valid payload.
ENCOUNTER_CASES: dict[str, Case] = {
    # Money is a JSON integer of cents.
    "cents as decimal string": Case(_charge(charge_cents="125.00"), 422, {"/charges/0/charge_cents"}),
    "cents as integer string": Case(_charge(charge_cents="125"), 422, {"/charges/0/charge_cents"}),
    "cents as exponent string": Case(_charge(charge_cents="1e2"), 422, {"/charges/0/charge_cents"}),
    "cents as fraction": Case(_charge(charge_cents=12.5), 422, {"/charges/0/charge_cents"}),
    "cents as integral float": Case(_charge(charge_cents=125.0), 422, {"/charges/0/charge_cents"}),
    "cents as boolean": Case(_charge(charge_cents=True), 422, {"/charges/0/charge_cents"}),
    "units as string": Case(_charge(units="2"), 422, {"/charges/0/units"}),
    "units as boolean": Case(_charge(units=True), 422, {"/charges/0/units"}),
    "units as float": Case(_charge(units=1.0), 422, {"/charges/0/units"}),
    "pointer as string": Case(_charge(diagnosis_pointers=["1"]), 422, {"/charges/0/diagnosis_pointers/0"}),
    "pointer as boolean": Case(_charge(diagnosis_pointers=[True]), 422, {"/charges/0/diagnosis_pointers/0"}),
    # Dates are full ISO dates, and plausible.
    "service date with slashes": Case(_top(service_date="2024/01/02"), 422, {"/service_date"}),
    "service date without dashes": Case(_top(service_date="20240102"), 422, {"/service_date"}),
    "service date with a time": Case(_top(service_date="2024-01-02T00:00:00"), 422, {"/service_date"}),
    "service date US style": Case(_top(service_date="01/02/2024"), 422, {"/service_date"}),
    "service date as number": Case(_top(service_date=20240102), 422, {"/service_date"}),
    "service date before 1900": Case(_top(service_date="1899-12-31"), 422, {"/service_date"}),
    "birth date before 1900": Case(_patient(birth_date="1850-01-01"), 422, {"/patient/birth_date"}),
    "coverage start before 1900": Case(
        lambda p: p["coverage"].update(start_date="1800-01-01"), 422, {"/coverage/start_date"}
    ),
    "charge date before 1900": Case(_charge(service_date="0980-02-29"), 422, {"/charges/0/service_date"}),
    "birth date in the future": Case(_patient(birth_date=_days(30)), 422, {"/patient/birth_date"}),
    "birth date after the service": Case(
        _patient(birth_date=_days(-2)), 422, {"/patient/birth_date"}
    ),  # service is 3 days ago
    "charge before the birth": Case(
        lambda p: (
            p["patient"].update(birth_date="2001-05-05"),
            p["charges"][0].update(service_date="2001-05-04"),
        ),
        422,
        {"/charges/0/service_date"},
    ),
    "service beyond the skew": Case(_top(service_date=_days(3)), 422, {"/service_date"}),
    "charge beyond the skew": Case(_charge(service_date=_days(3)), 422, {"/charges/0/service_date"}),
    "service within the skew": Case(_top(service_date=_days(1)), 201),
    "old service (EHR history)": Case(_top(service_date="1995-06-01"), 201),
    # Unknown fields are named by their own pointer.
    "unknown top-level field": Case(_top(surprise=1), 422, {"/surprise"}),
    "unknown patient field": Case(_patient(nickname="x"), 422, {"/patient/nickname"}),
    "unknown charge field": Case(lambda p: p["charges"][1].update(price="1.00"), 422, {"/charges/1/price"}),
    "unknown field with a slash": Case(_top(**{"a/b": 1}), 422, {"/a~1b"}),
    # Deep nesting inside a field is a 400 naming the limit, never a 500; shallow nesting is just a bad type.
    "nesting of 1000 levels": Case(_top(documentation=_nested(1000)), 400, {""}),
    "nesting one past the limit": Case(_top(documentation=_nested(MAX_JSON_DEPTH)), 400, {""}),
    "nesting under the limit": Case(_top(documentation=_nested(10)), 422, {"/documentation"}),
    "brackets inside a string": Case(_top(documentation="[{" * 2000), 201),
}


async def _count(owner_engine: AsyncEngine, table: str, tenant_id: str) -> int:
    async with owner_engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    text(f"SELECT count(*) FROM rcm.{table} WHERE tenant_id = :t"),  # noqa: S608 - constant names
                    {"t": uuid.UUID(tenant_id)},
                )
            ).scalar_one()
        )


def _named(response: httpx.Response) -> set[str]:
    return {e["pointer"] for e in response.json().get("errors", [])}


@pytest.mark.parametrize("name", list(ENCOUNTER_CASES))
async def test_encounter_intake_case(name: str, practice_api: Api, owner_engine: AsyncEngine) -> None:
    case = ENCOUNTER_CASES[name]
    payload = encounter_payload()
    case.edit(payload)
    response = await practice_api.post("/encounters", content=_encode(payload))
    assert response.status_code == case.status, response.text
    if case.status >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")
        assert _named(response) == case.names, response.text
        assert await _count(owner_engine, "encounter", practice_api.tenant_id) == 0
        assert await _count(owner_engine, "patient", practice_api.tenant_id) == 0


async def test_decimal_string_is_never_stored_as_cents(practice_api: Api) -> None:
    """The reported bug: "125.00" was stored as 125 cents."""
    payload = encounter_payload()
    payload["charges"] = [{"procedure_code": "99213", "charge_cents": "125.00", "diagnosis_pointers": [1]}]
    assert (await practice_api.post("/encounters", payload)).status_code == 422
    listed = (await practice_api.get("/encounters")).json()
    assert listed["items"] == []


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        (b'{"mrn": "M2", "mrn": "M3"}', "/mrn"),
        (
            b'{"mrn": "M2", "given_name": "A", "family_name": "B", "birth_date": "1980-01-01", '
            b'"address": {"line1": "x", "line1": "y"}}',
            "/address/line1",
        ),
    ],
    ids=["top-level", "nested"],
)
async def test_a_key_given_twice_is_refused_not_last_wins(
    body: bytes, pointer: str, practice_api: Api
) -> None:
    """JSON parsers keep one of two equal keys silently; which one was meant is not ours to guess."""
    response = await practice_api.post("/patients", content=body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [{"pointer": pointer, "detail": "is given more than once"}]


async def test_a_query_parameter_given_twice_is_refused(practice_api: Api) -> None:
    response = await practice_api.client.get(
        practice_api.url("/encounters") + "?limit=1&limit=500", headers=practice_api.headers
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [{"pointer": "query:limit", "detail": "is given more than once"}]


async def test_the_depth_limit_is_named(practice_api: Api) -> None:
    response = await practice_api.post("/encounters", content=b"[" * 1000 + b"]" * 1000)
    assert response.status_code == 400
    assert str(MAX_JSON_DEPTH) in response.json()["detail"]


async def test_deep_json_that_is_also_malformed_is_400(practice_api: Api) -> None:
    response = await practice_api.post("/encounters", content=b'{"a": ' * 5000)
    assert response.status_code == 400


# Content-Type: a body that is not JSON is a 415 naming the header.
@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
        ("application/xml", 415),
        ("application/json; charset=latin-1", 415),
        (None, 415),
        ("application/json; charset=utf-8", 201),
        ("application/merge-patch+json", 201),
    ],
)
async def test_content_type(
    practice_api: Api, client: AsyncTestClient[Litestar], content_type: str | None, status: int
) -> None:
    import json

    headers = practice_api.headers | {"Idempotency-Key": uuid.uuid4().hex}
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = await client.post(
        practice_api.url("/encounters"), content=json.dumps(encounter_payload()).encode(), headers=headers
    )
    assert response.status_code == status, response.text
    if status == 415:
        assert _named(response) == {"header:Content-Type"}


async def test_every_body_route_needs_json(practice_api: Api, client: AsyncTestClient[Litestar]) -> None:
    headers = practice_api.headers | {"Idempotency-Key": uuid.uuid4().hex, "Content-Type": "text/plain"}
    for path in ("/patients", "/patients/search", "/providers"):
        response = await client.post(practice_api.url(path), content=b"{}", headers=headers)
        assert response.status_code == 415, (path, response.text)
        assert _named(response) == {"header:Content-Type"}


# The other intake routes: each integer, date and unknown field is strict there too.
@pytest.mark.parametrize(
    ("path", "body", "status", "names"),
    [
        ("/patients", patient_payload(birth_date=_days(30)), 422, {"/birth_date"}),
        ("/patients", patient_payload(birth_date="1899-01-01"), 422, {"/birth_date"}),
        ("/patients", patient_payload(birth_date="1980-2-29"), 422, {"/birth_date"}),
        ("/patients", patient_payload(sex=1), 422, {"/sex"}),
        ("/patients", patient_payload(mrn=12345), 422, {"/mrn"}),
        (
            "/patients",
            patient_payload(
                address={"line1": "1 A", "city": "B", "state": "IL", "postal_code": "62701", "zip": "x"}
            ),
            422,
            {"/address/zip"},
        ),
        ("/patients", patient_payload(birth_date=_days(1)), 201, set()),
        ("/patients/search", {"birth_date": "1980/01/01", "family_name": "X"}, 422, {"/birth_date"}),
        ("/patients/search", {"mrn": "M1", "limit": 3}, 422, {"/limit"}),
        ("/providers", {"npi": 1234567893, "name": "Dr Int"}, 422, {"/npi"}),
        ("/providers", {"npi": "1234567893", "name": "Dr X", "kind": True}, 422, {"/kind"}),
    ],
)
async def test_other_intake_routes(
    practice_api: Api, path: str, body: dict[str, Any], status: int, names: set[str]
) -> None:
    response = await practice_api.post(path, body)
    assert response.status_code == status, response.text
    if status >= 400:
        assert _named(response) == names


async def test_coverage_dates_are_strict(practice_api: Api) -> None:
    patient = (await practice_api.post("/patients", patient_payload())).json()
    for start, pointer in (("2024-1-1", "/start_date"), ("1850-01-01", "/start_date")):
        response = await practice_api.post(
            f"/patients/{patient['id']}/coverages",
            {"payer_id": "DEMO-MCR", "member_id": "M1", "start_date": start},
        )
        assert response.status_code == 422, response.text
        assert _named(response) == {pointer}


async def test_stored_patient_born_after_the_service_is_named(practice_api: Api) -> None:
    patient = (await practice_api.post("/patients", patient_payload(birth_date=_days(-1)))).json()
    payload = encounter_payload()
    payload.pop("patient")
    payload.pop("coverage")
    payload["patient_id"] = patient["id"]
    response = await practice_api.post("/encounters", payload)  # service 3 days ago
    assert response.status_code == 422, response.text
    assert _named(response) == {"/service_date"}


# Unknown query parameters: a 400 naming each one, on any route.
@pytest.mark.parametrize(
    ("method", "path", "params", "names"),
    [
        ("GET", "/encounters", {"foo": "1"}, {"query:foo"}),
        ("GET", "/encounters", {"status": "coded", "statuss": "coded"}, {"query:statuss"}),
        ("GET", "/patients", {"limit": "1", "mrn": "X", "b": ""}, {"query:mrn", "query:b"}),
        ("GET", "/providers", {"page": "2"}, {"query:page"}),
        ("GET", "/providers", {"é": "\u0000"}, {"query:é"}),
        ("POST", "/patients/search", {"mrn": "MRN-1"}, {"query:mrn"}),
    ],
)
async def test_unknown_query_parameters(  # noqa: PLR0917 - pytest passes parameters positionally
    practice_api: Api,
    client: AsyncTestClient[Litestar],
    method: str,
    path: str,
    params: dict[str, str],
    names: set[str],
) -> None:
    response = await client.request(
        method,
        practice_api.url(path),
        params=params,
        json={"family_name": "X", "birth_date": "1980-01-01"} if method == "POST" else None,
        headers=practice_api.headers,
    )
    assert response.status_code == 400, response.text
    assert _named(response) == names
    for name in names:
        assert name.removeprefix("query:") in response.json()["detail"]


async def test_declared_query_parameters_still_work(practice_api: Api) -> None:
    response = await practice_api.get(
        "/encounters", {"limit": 5, "status": "coded", "service_date_from": "2024-01-01"}
    )
    assert response.status_code == 200, response.text


_SAMPLE = {"uuid": str(uuid.uuid4()), "int": "1", "str": "x", "path": "x"}


def _fill(path: str) -> str:
    """A concrete URL for a route template: the check runs before any handler looks at the values."""
    return re.sub(r"\{\w+:(\w+)\}", lambda m: _SAMPLE[m.group(1)], path)


async def test_every_route_refuses_unknown_query_parameters(
    app: Litestar,
    client: AsyncTestClient[Litestar],
    practice_api: Api,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    """Generic: from each route's own declaration, so routes added later are covered the day they land.

    Each route is called with the first of several callers its guards let through (the check runs after
    them, so a refused caller sees its 403); every route must run the strict-input hook.
    """
    tokens = [practice_api.token] + [
        await mint_access_token(user_principal(*roles, mfa=True), sessions=sessions, settings=settings)
        for roles in ((Role.ADMIN,), (Role.AUDITOR,), (Role.SUPERVISOR, Role.CODER, Role.BILLER))
    ]
    reached: list[str] = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for method, (handler, _) in route.route_handler_map.items():
            if method in ("HEAD", "OPTIONS") or not isinstance(handler, HTTPRouteHandler):
                continue
            assert handler.resolve_before_request() is check_request, f"{method} {route.path} replaces it"
            for token in tokens:
                response = await client.request(
                    method,
                    _fill(route.path),
                    params={"zz_not_a_parameter": "1"},
                    headers={"Authorization": f"Bearer {token}"},
                )
                if response.status_code in (401, 403):
                    continue
                assert response.status_code == 400, (method, route.path, response.text)
                if response.headers["content-type"].startswith("text/html"):
                    # A page (rcm.web) names the refused parameter on its error page.
                    assert "query:zz_not_a_parameter" in response.text, (method, route.path)
                    reached.append(f"{method} {route.path}")
                    break
                body = response.json()
                named = _named(response) if "errors" in body else set()
                # The FHIR base answers an OperationOutcome, naming the parameter in its diagnostics.
                diagnostics = " ".join(i.get("diagnostics", "") for i in body.get("issue", []))
                assert (
                    named == {"query:zz_not_a_parameter"}
                    or "zz_not_a_parameter" in body.get("error_description", "")
                    or "query zz_not_a_parameter" in diagnostics
                ), (method, route.path, body)
                reached.append(f"{method} {route.path}")
                break
    assert len(reached) > 20, reached


# NPIs failing their check digit: accepted and flagged, never a second provider of the same name.
async def test_npi_failing_its_check_digit_is_accepted_and_flagged(
    practice_api: Api, owner_engine: AsyncEngine
) -> None:
    payload = encounter_payload(rendering_provider={"npi": "1234567890", "name": "Dr Typo Fake"})
    first = await practice_api.post("/encounters", payload)
    assert first.status_code == 201, first.text
    provider = (await practice_api.get(f"/providers/{first.json()['rendering_provider_id']}")).json()
    assert provider["npi"] == "1234567890"
    assert provider["npi_check_digit_valid"] is False
    history = (await practice_api.get(f"/encounters/{first.json()['id']}/status")).json()["history"]
    assert [h["note"] for h in history] == ["npi_check_digit_failed"]
    # Resending never duplicates: matched by NPI.
    again = await practice_api.post(
        "/encounters", encounter_payload(rendering_provider={"npi": "1234567890", "name": "Dr Typo Fake"})
    )
    assert again.json()["rendering_provider_id"] == first.json()["rendering_provider_id"]
    async with owner_engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT npi_valid FROM rcm.provider WHERE tenant_id = :t AND npi = '1234567890'"),
                {"t": uuid.UUID(practice_api.tenant_id)},
            )
        ).all()
    assert rows == [(False,)]


async def test_mistyped_npi_never_makes_a_second_provider_of_that_name(
    practice_api: Api, owner_engine: AsyncEngine
) -> None:
    good = await practice_api.post("/providers", {"npi": "1234567893", "name": "Dr Same Fake"})
    assert good.status_code == 201
    assert good.json()["npi_check_digit_valid"] is True
    before = await _count(owner_engine, "provider", practice_api.tenant_id)
    # The explicit route refuses, naming the NPI.
    typo = await practice_api.post("/providers", {"npi": "1234567890", "name": "dr same fake"})
    assert typo.status_code == 409, typo.text
    assert _named(typo) == {"/npi"}
    # Intake accepts the encounter, attaches the provider of that name and flags it for the scrub.
    created = await practice_api.post(
        "/encounters", encounter_payload(rendering_provider={"npi": "1234567890", "name": "Dr Same Fake"})
    )
    assert created.status_code == 201, created.text
    assert created.json()["rendering_provider_id"] == good.json()["id"]
    history = (await practice_api.get(f"/encounters/{created.json()['id']}/status")).json()["history"]
    assert history[0]["note"] == "npi_check_digit_failed"
    after = await _count(owner_engine, "provider", practice_api.tenant_id)
    assert after == before + 1  # only the manifest's billing provider was added, no second "Dr Same Fake"


# Token endpoint: RFC 6749 §5.2 bodies whose description names the parameter or header.
@pytest.mark.parametrize(
    ("kwargs", "status", "error", "mentions"),
    [
        ({"data": {"scope": "encounters:read"}}, 400, "invalid_request", "grant_type"),
        ({"data": {"grant_type": "password"}}, 400, "unsupported_grant_type", "grant_type"),
        ({"data": {"grant_type": "client_credentials"}}, 401, "invalid_client", "Authorization"),
        (
            {"data": {"grant_type": "client_credentials"}, "headers": {"Authorization": "Basic bm86bm8="}},
            401,
            "invalid_client",
            "authentication failed",
        ),
        ({"json": {"grant_type": "client_credentials"}}, 400, "invalid_request", "Content-Type"),
        ({"content": b"grant_type=client_credentials"}, 400, "invalid_request", "Content-Type"),
        (
            {"data": {"grant_type": "client_credentials"}, "params": {"grant_type": "x"}},
            400,
            "invalid_request",
            "query:grant_type",
        ),
    ],
)
async def test_token_endpoint_errors(
    client: AsyncTestClient[Litestar], kwargs: dict[str, Any], status: int, error: str, mentions: str
) -> None:
    response = await client.post("/oauth/token", **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    assert mentions in body["error_description"], body
    assert "does not exist" not in body["error_description"]  # whether a client exists is not told


def test_depth_scan() -> None:
    assert not json_depth_exceeds(b'{"a": [1, {"b": "[[[["}]}', 3)  # brackets in strings are text
    assert json_depth_exceeds(b'{"a": [1, {"b": 2}]}', 2)
    assert not json_depth_exceeds(b'"\\"[[[[[[\\""', 1)  # escaped quotes keep the string open
    assert json_depth_exceeds(b"[" * 65)
    assert not json_depth_exceeds(b"[" * 64 + b"]" * 64)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("application/json", True),
        ("Application/JSON; charset=UTF-8", True),
        ("application/problem+json", True),
        ("application/jsonx", False),
        ("text/json", False),
        ("application/json; charset=utf-16", False),
        ("", False),
    ],
)
def test_json_media_types(value: str, ok: bool) -> None:
    assert is_json_media_type(value) is ok


async def test_framework_refusals_name_the_header_or_body(
    practice_api: Api, client: AsyncTestClient[Litestar]
) -> None:
    anonymous = await client.post(practice_api.url("/encounters"), json=encounter_payload())
    assert anonymous.status_code == 401
    assert _named(anonymous) == {"header:Authorization"}
    too_big = await practice_api.post("/encounters", encounter_payload(documentation="x" * (3 * 1024 * 1024)))
    assert too_big.status_code == 413
    assert _named(too_big) == {""}


async def test_a_caller_without_the_scope_gets_403_before_any_input_check(
    practice_api: Api,
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    """Guards come first: the refusal is the 403 (audited as a denial), not a hint about the body."""
    reader = await mint_access_token(
        client_principal(TenantId(uuid.UUID(practice_api.tenant_id)), scopes=frozenset({"encounters:read"})),
        sessions=sessions,
        settings=settings,
    )
    response = await client.post(
        practice_api.url("/encounters"),
        content=b"[" * 1000,
        params={"zz": "1"},
        headers={"Authorization": f"Bearer {reader}", "Content-Type": "text/plain", "Idempotency-Key": "k-1"},
    )
    assert response.status_code == 403, response.text


@pytest.mark.parametrize("value", ["5.0", "1e1", "true", " 5", "0x5", ""])
async def test_integer_query_parameters_are_not_coerced(practice_api: Api, value: str) -> None:
    for path in ("/encounters", "/patients", "/providers"):
        response = await practice_api.get(path, {"limit": value})
        assert response.status_code == 422, (path, value, response.text)
        assert _named(response) == {"query:limit"}
    assert (await practice_api.get("/encounters", {"limit": "5"})).status_code == 200
