"""The README's FHIR example does what the README says."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fhir.conftest import Fhir
from tests.support import Api

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_bundle() -> bytes:
    text = README.read_text()
    start = text.index("cat > $OUT/visit.json <<'JSON'\n") + len("cat > $OUT/visit.json <<'JSON'\n")
    return text[start : text.index("\nJSON\n", start)].encode()


async def test_the_readme_bundle(fhir: Fhir, practice_api: Api) -> None:
    body = readme_bundle()
    json.loads(body)
    response = await fhir.post(body, key="fhir-visit-10001")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["type"] == "transaction-response"
    assert [e["response"]["status"] for e in answer["entry"]] == ["201 Created"] * 3
    encounter = (
        await practice_api.client.get(
            answer["entry"][1]["response"]["location"], headers=practice_api.headers
        )
    ).json()
    assert (encounter["external_id"], encounter["status"]) == ("EHR-FHIR-10001", "needs_coding")
    assert [d["code"] for d in encounter["diagnoses"]] == ["E119"]
    assert "SNOMED CT 185349003 Encounter for check up" in encounter["documentation"]
    rendering = (await practice_api.get(f"/providers/{encounter['rendering_provider_id']}")).json()
    assert (rendering["npi"], rendering["name"]) == ("1910000003", "Dr Demo Renderer (DEMO)")
    replay = await fhir.post(body, key="fhir-visit-10001")
    assert replay.headers["Idempotent-Replayed"] == "true"
