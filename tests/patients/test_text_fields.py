from __future__ import annotations

import pytest

from tests.support import Api, patient_payload


@pytest.mark.parametrize(
    ("overrides", "pointer"),
    [
        ({"family_name": "Fake\u0000name"}, "/family_name"),
        ({"mrn": "MRN\u00001"}, "/mrn"),
        (
            {"address": {"line1": "1\u0000 Way", "city": "X", "state": "IL", "postal_code": "62701"}},
            "/address/line1",
        ),
    ],
)
async def test_nul_in_patient_text_is_a_422_naming_the_field(
    practice_api: Api, overrides: dict[str, object], pointer: str
) -> None:
    """PostgreSQL text cannot hold NUL: the API refuses it up front instead of failing in the driver."""
    response = await practice_api.post("/patients", patient_payload(**overrides))
    assert response.status_code == 422, response.text
    assert [e["pointer"] for e in response.json()["errors"]] == [pointer]
    listed = await practice_api.get("/patients")
    assert listed.json()["items"] == []


async def test_nul_in_coverage_payer_is_a_422(practice_api: Api) -> None:
    patient = await practice_api.post("/patients", patient_payload())
    assert patient.status_code == 201, patient.text
    response = await practice_api.post(
        f"/patients/{patient.json()['id']}/coverages", {"payer_id": "DEMO\u0000", "member_id": "M1"}
    )
    assert response.status_code == 422, response.text
    assert [e["pointer"] for e in response.json()["errors"]] == ["/payer_id"]
