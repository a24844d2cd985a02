"""Real patient bundles are large: a 1,000-entry Synthea-shaped bundle and one of about 10 MB (over the JSON
API's 2 MiB limit, under the FHIR endpoint's own) are taken whole, every entry answered."""

from __future__ import annotations

import json
import time
from collections import Counter

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.fhir import bundles
from tests.fhir.conftest import Fhir
from tests.fhir.test_intake import counts
from tests.support import Api


async def test_a_thousand_entry_bundle(fhir: Fhir, practice_api: Api, owner_engine: AsyncEngine) -> None:
    bundle = bundles.synthea_bundle(143)  # 3 + 143 x 7 = 1,004 entries
    assert len(bundle["entry"]) >= 1000
    response = await fhir.post(bundle)
    assert response.status_code == 200, response.text[:1000]
    answered = Counter(e["response"]["status"] for e in response.json()["entry"])
    assert sum(answered.values()) == len(bundle["entry"])
    assert set(answered) <= {"200 OK", "201 Created"}
    found = await counts(owner_engine, practice_api.tenant_id)
    assert (found["patient"], found["encounter"]) == (1, 143)
    # A resend: every entry answered from what exists, nothing created.
    again = await fhir.post(bundle)
    assert {e["response"]["status"] for e in again.json()["entry"]} == {"200 OK"}
    assert await counts(owner_engine, practice_api.tenant_id) == found


async def test_a_ten_megabyte_bundle(fhir: Fhir, practice_api: Api, owner_engine: AsyncEngine) -> None:
    bundle = bundles.synthea_bundle(120, note_repeat=1100)
    body = json.dumps(bundle).encode()
    assert len(body) > 10_000_000
    started = time.perf_counter()
    response = await fhir.post(body)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text[:1000]
    print(f"\n10 MB bundle: {len(body) / 1e6:.1f} MB, {len(bundle['entry'])} entries, {elapsed:.1f} s")
    found = await counts(owner_engine, practice_api.tenant_id)
    assert found["encounter"] == 120
