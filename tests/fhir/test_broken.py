"""Broken bundles: each is a 4xx OperationOutcome naming the entry and element, and nothing is written."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.app import create_app
from rcm.config import Settings
from rcm.identity.principal import Role
from rcm.identity.testing import mint_access_token, user_principal
from rcm.tenancy.models import Tenant
from tests.conftest import practice_api_for
from tests.fhir import bundles
from tests.fhir.conftest import FHIR_JSON, Fhir
from tests.fhir.test_intake import TABLES, counts
from tests.support import Api


def _outcome(response: httpx.Response) -> list[str]:
    assert response.headers["content-type"].startswith(FHIR_JSON)
    body = response.json()
    OperationOutcome.model_validate(body)
    return [x for issue in body["issue"] for x in issue.get("expression", [])]


def _edit(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    bundle = bundles.ehr_visit_bundle()
    change(bundle)
    return bundle


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(bundle: dict[str, Any]) -> None:
        node: Any = bundle
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value

    return change


# (body, status, expressions the OperationOutcome must name)
CASES: dict[str, tuple[bytes, int, list[str]]] = {
    "not JSON": (b'{"resourceType": "Bundle", "type": "transaction", "entry": [', 400, []),
    "trailing garbage": (b'{"resourceType": "Bundle", "type": "batch"} x', 400, []),
    "not a Bundle": (json.dumps(bundles.synthea_patient()).encode(), 400, ["Bundle.resourceType"]),
    "JSON array": (b"[]", 400, []),
    "a searchset": (
        json.dumps({"resourceType": "Bundle", "type": "searchset"}).encode(),
        422,
        ["Bundle.type"],
    ),
    "no type": (json.dumps({"resourceType": "Bundle"}).encode(), 400, ["Bundle.type"]),
    "wrong resourceType in an entry": (
        json.dumps(_edit(_set(["entry", 2, "resource", "resourceType"], "Encounterr"))).encode(),
        400,
        ["Bundle.entry[2].resource.resourceType"],
    ),
    "an element R4 does not have": (
        json.dumps(_edit(_set(["entry", 2, "resource", "actualPeriod"], {"start": "2026-01-01"}))).encode(),
        400,
        ["Bundle.entry[2].resource.actualPeriod"],
    ),
    "an invalid date": (
        json.dumps(_edit(_set(["entry", 0, "resource", "birthDate"], "1980-13-45"))).encode(),
        400,
        ["Bundle.entry[0].resource.birthDate"],
    ),
    "a reference that is a number": (
        json.dumps(_edit(_set(["entry", 2, "resource", "subject"], {"reference": 7}))).encode(),
        400,
        ["Bundle.entry[2].resource.subject.reference"],
    ),
    "a dangling urn:uuid reference": (
        json.dumps(
            _edit(
                _set(
                    ["entry", 2, "resource", "subject"],
                    {"reference": "urn:uuid:4f0c2b8e-0000-4000-8000-000000000001"},
                )
            )
        ).encode(),
        422,
        ["Bundle.entry[2].resource.subject"],
    ),
    "a reference to a patient never sent": (
        json.dumps(
            _edit(_set(["entry", 2, "resource", "subject"], {"reference": "Patient/never-sent"}))
        ).encode(),
        422,
        ["Bundle.entry[2].resource.subject"],
    ),
    "a subject that is a Practitioner": (
        json.dumps(
            _edit(_set(["entry", 2, "resource", "subject"], {"reference": "Practitioner?identifier=x|1"}))
        ).encode(),
        422,
        ["Bundle.entry[2].resource.subject"],
    ),
    "a malformed CPT code": (
        json.dumps(
            _edit(
                _set(["entry", 5, "resource", "item", 0, "productOrService", "coding", 0, "code"], "99213-25")
            )
        ).encode(),
        422,
        ["Bundle.entry[5].resource.item[0].productOrService.coding[0].code"],
    ),
    "a negative charge": (
        json.dumps(_edit(_set(["entry", 5, "resource", "item", 0, "net", "value"], -5))).encode(),
        422,
        ["Bundle.entry[5].resource.item[0].net"],
    ),
    "a DELETE entry": (
        json.dumps(_edit(_set(["entry", 1, "request"], {"method": "DELETE", "url": "Coverage/1"}))).encode(),
        422,
        ["Bundle.entry[1].request.method"],
    ),
    "a date of service in the future": (
        json.dumps(
            _edit(_set(["entry", 2, "resource", "period"], {"start": "2999-01-01T10:00:00Z"}))
        ).encode(),
        422,
        ["Bundle.entry[2].resource.period.start"],
    ),
    "an encounter without a date": (
        json.dumps(_edit(_set(["entry", 2, "resource", "period"], {}))).encode(),
        422,
        ["Bundle.entry[2].resource.period.start"],
    ),
    "a patient without a name": (
        json.dumps(_edit(_set(["entry", 0, "resource", "name"], []))).encode(),
        422,
        ["Bundle.entry[0].resource.name"],
    ),
    "a key given twice": (
        b'{"resourceType": "Bundle", "type": "batch", "entry": [{"resource": {"resourceType": "Patient",'
        b' "gender": "male", "gender": "female"}}]}',
        400,
        ["Bundle.entry[0]"],
    ),
    "a top-level key given twice": (
        b'{"resourceType": "Bundle", "type": "batch", "type": "transaction"}',
        400,
        ["Bundle"],
    ),
    "a key given twice deep inside": (
        b'{"resourceType": "Bundle", "type": "batch", "meta": {"tag": [{"code": "a", "code": "b"}]}}',
        400,
        ["Bundle"],
    ),
    "entry that is not a list": (
        b'{"resourceType": "Bundle", "type": "batch", "entry": {"resource": {}}}',
        400,
        ["Bundle.entry"],
    ),
    "an entry that is not an object": (
        b'{"resourceType": "Bundle", "type": "transaction", "entry": [7]}',
        400,
        ["Bundle.entry[0]"],
    ),
    "nested too deep": (
        b'{"resourceType": "Bundle", "type": "batch", "entry": [' + b"[" * 100 + b"]" * 100 + b"]}",
        400,
        ["Bundle"],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_broken_bundle(name: str, fhir: Fhir, practice_api: Api, owner_engine: AsyncEngine) -> None:
    body, status, expressions = CASES[name]
    response = await fhir.post(body)
    assert response.status_code == status, response.text
    named = _outcome(response)
    for expression in expressions:
        assert expression in named, (name, named)
    assert await counts(owner_engine, practice_api.tenant_id) == dict.fromkeys(TABLES, 0)


async def test_headers_are_checked_before_the_body(fhir: Fhir) -> None:
    bundle = bundles.ehr_visit_bundle()
    unsupported = await fhir.post(bundle, content_type="text/plain")
    assert unsupported.status_code == 415
    _outcome(unsupported)
    no_key = await fhir.post(bundle, key=None)
    assert no_key.status_code == 422
    assert "Idempotency-Key" in no_key.json()["issue"][0]["diagnostics"]


async def test_staff_and_owners_have_no_fhir_intake(
    fhir: Fhir, tenant: Tenant, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    for principal in (
        user_principal(Role.CODER),
        user_principal(Role.PRACTICE_OWNER, home_tenant=tenant.id),
        user_principal(Role.SUPERVISOR, Role.CODER, Role.BILLER, mfa=True),
    ):
        token = await mint_access_token(principal, sessions=sessions, settings=settings)
        response = await fhir.post(bundles.ehr_visit_bundle(), token=token)
        assert response.status_code == 403, response.text
        _outcome(response)


@pytest.fixture
async def small_limit_api(
    settings: Settings, tenant: Tenant, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Api]:
    app: Litestar = create_app(settings.model_copy(update={"fhir_max_body_bytes": 4096}))
    async with AsyncTestClient(app=app) as client:
        yield await practice_api_for(client, tenant, sessions, settings)


async def test_too_large_is_413(small_limit_api: Api, owner_engine: AsyncEngine) -> None:
    response = await Fhir(small_limit_api).post(bundles.synthea_bundle(2))
    assert response.status_code == 413
    assert _outcome(response) == ["Bundle"]
    assert await counts(owner_engine, small_limit_api.tenant_id) == dict.fromkeys(TABLES, 0)


# No 5xx, whatever arrives ------------------------------------------------------------------------------

EXAMPLES = int(os.environ.get("RCM_FHIR_FUZZ_EXAMPLES", "40"))
FHIR_KEYS = [
    "resourceType", "type", "entry", "resource", "fullUrl", "request", "method", "reference", "identifier",
    "system", "value", "code", "coding", "subject", "period", "start", "participant", "individual",
    "contained", "id", "birthDate", "name", "family", "given", "item", "net", "diagnosis", "encounter",
]  # fmt: skip
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(
        [
            "Patient",
            "Encounter",
            "Bundle",
            "urn:uuid:x",
            "#x",
            "Patient?identifier=a|b",
            "1980-02-29",
            "\u0000",
        ]
    )
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(FHIR_KEYS), children, max_size=5)
    ),
    max_leaves=25,
)
fuzz_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _paths(node: Any, prefix: list[Any]) -> list[list[Any]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, [*prefix, key])
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, [*prefix, index])
    return found


@fuzz_settings
@given(data=st.data())
async def test_random_bundles_never_5xx(fhir: Fhir, data: st.DataObject) -> None:
    bundle = data.draw(st.sampled_from([bundles.ehr_visit_bundle(), bundles.synthea_bundle(1)]))
    bundle = copy.deepcopy(bundle)
    bundle["type"] = data.draw(st.sampled_from(["transaction", "batch", "collection"]))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(bundle, [])))
        _set(path, data.draw(json_values))(bundle)
    response = await fhir.post(json.dumps(bundle).encode())
    assert response.status_code < 500, response.text[:500]
    assert response.headers["content-type"].startswith(FHIR_JSON)


@fuzz_settings
@given(value=json_values)
async def test_random_json_never_5xx(fhir: Fhir, value: Any) -> None:
    response = await fhir.post(json.dumps(value).encode())
    assert response.status_code < 500, response.text[:500]
    assert 400 <= response.status_code < 500 or response.status_code == 200
