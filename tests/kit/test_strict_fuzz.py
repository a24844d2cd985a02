"""Random JSON at the intake routes never yields a 5xx: any body, any nesting, any field swapped for noise.

Bounded for CI on two cores; a deeper local hunt: RCM_STRICT_FUZZ_EXAMPLES=2000.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import Api, encounter_payload, patient_payload

EXAMPLES = int(os.environ.get("RCM_STRICT_FUZZ_EXAMPLES", "120"))
ROUTES = ("/encounters", "/patients", "/patients/search", "/providers", "/patients/{patient_id}/coverages")
# Field names the intake DTOs know, so random objects reach the validators beyond "unknown field".
KNOWN_KEYS = sorted(
    {*encounter_payload(), *patient_payload(), "npi", "name", "kind", "taxonomy", "payer_id", "member_id"}
    | {"start_date", "end_date", "charge_cents", "units", "diagnosis_pointers", "procedure_code", "code"}
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(["125.00", "1e2", "1980-02-29", "2999-01-01", "1899-12-31", "\u0000", "-1", ""])
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.sampled_from(KNOWN_KEYS) | st.text(max_size=10), children, max_size=6)
    ),
    max_leaves=30,
)
settings_ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


async def _send(api: Api, route: str, patient_id: str, body: bytes) -> httpx.Response:
    return await api.post(route.format(patient_id=patient_id), content=body)


def _assert_handled(response: httpx.Response, route: str) -> None:
    assert response.status_code < 500, (route, response.status_code, response.text[:500])
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["status"] == response.status_code


async def _patient(api: Api) -> str:
    created = await api.post("/patients", patient_payload())
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


@settings_
@given(route=st.sampled_from(ROUTES), value=json_values)
async def test_random_json_never_5xx(practice_api: Api, route: str, value: Any) -> None:
    patient_id = await _patient(practice_api) if "{patient_id}" in route else str(uuid.uuid4())
    response = await _send(practice_api, route, patient_id, json.dumps(value).encode())
    _assert_handled(response, route)


@settings_
@given(data=st.data())
async def test_a_valid_encounter_with_one_field_replaced_never_5xx(
    practice_api: Api, data: st.DataObject
) -> None:
    payload = encounter_payload()
    # Walk to a random place in the payload and put noise there.
    target: Any = payload
    while True:
        keys = list(target) if isinstance(target, dict) else list(range(len(target)))
        if not keys:
            break
        key = data.draw(st.sampled_from(keys))
        if isinstance(target[key], dict | list) and target[key] and data.draw(st.booleans()):
            target = target[key]
            continue
        target[key] = data.draw(json_values)
        break
    response = await practice_api.post("/encounters", content=json.dumps(payload).encode())
    _assert_handled(response, "/encounters")


@settings_
@given(
    route=st.sampled_from(ROUTES),
    depth=st.integers(min_value=0, max_value=5000),
    opener=st.sampled_from(["[", '{"a":', '{"patient":', '[{"x":[']),
    closed=st.booleans(),
    inner=st.sampled_from(["1", '"x"', "{}", "[]", "", "null"]),
)
async def test_random_nesting_never_5xx(  # noqa: PLR0917 - hypothesis passes the draws
    practice_api: Api, route: str, depth: int, opener: str, closed: bool, inner: str
) -> None:
    closer = {"[": "]", '{"a":': "}", '{"patient":': "}", '[{"x":[': "]}]"}[opener]
    body = opener * depth + inner + (closer * depth if closed else "")
    response = await _send(practice_api, route, str(uuid.uuid4()), body.encode())
    _assert_handled(response, route)
    if depth > 64 and opener == "[":
        assert response.status_code == 400


@settings_
@given(route=st.sampled_from(ROUTES), body=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
async def test_random_bytes_never_5xx(practice_api: Api, route: str, body: bytes) -> None:
    response = await _send(practice_api, route, str(uuid.uuid4()), body)
    _assert_handled(response, route)
