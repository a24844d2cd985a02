from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from tests.support import Api

FHIR_JSON = "application/fhir+json"


class Fhir:
    """Posts bundles to /fhir/r4 as a practice system (the practice is the token's)."""

    def __init__(self, api: Api) -> None:
        self.api = api

    async def post(
        self,
        bundle: Any,
        *,
        key: str | None = "auto",
        content_type: str = FHIR_JSON,
        token: str | None = None,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.api.token}", "Content-Type": content_type}
        if key is not None:
            headers["Idempotency-Key"] = uuid.uuid4().hex if key == "auto" else key
        content = bundle if isinstance(bundle, bytes) else json.dumps(bundle).encode()
        return await self.api.client.post("/fhir/r4", content=content, headers=headers)


@pytest.fixture
def fhir(practice_api: Api) -> Fhir:
    return Fhir(practice_api)


@pytest.fixture
def other_fhir(other_practice_api: Api) -> Fhir:
    return Fhir(other_practice_api)
