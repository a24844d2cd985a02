"""Test helpers: an API caller bound to a tenant and a token, and realistic (obviously fake) payloads."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from litestar import Litestar
from litestar.testing import AsyncTestClient


class Api:
    """Calls ``/api/v1/tenants/{slug}/...`` with a bearer token; POSTs get a fresh Idempotency-Key."""

    def __init__(
        self, client: AsyncTestClient[Litestar], token: str, slug: str, *, tenant_id: str = ""
    ) -> None:
        self.client = client
        self.token = token
        self.slug = slug
        self.tenant_id = tenant_id

    def url(self, path: str, slug: str | None = None) -> str:
        return f"/api/v1/tenants/{slug or self.slug}{path}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def post(
        self,
        path: str,
        json: Any = None,
        *,
        key: str | None = "auto",
        content: bytes | None = None,
        slug: str | None = None,
    ) -> httpx.Response:
        headers = dict(self.headers)
        if key is not None:
            headers["Idempotency-Key"] = uuid.uuid4().hex if key == "auto" else key
        if content is not None:
            headers["Content-Type"] = "application/json"
            return await self.client.post(self.url(path, slug), content=content, headers=headers)
        return await self.client.post(self.url(path, slug), json=json, headers=headers)

    async def get(
        self, path: str, params: dict[str, Any] | None = None, *, slug: str | None = None
    ) -> httpx.Response:
        return await self.client.get(self.url(path, slug), params=params, headers=self.headers)


def patient_payload(**overrides: Any) -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    payload = {
        "mrn": f"MRN-{suffix}",
        "given_name": "Testy",
        "family_name": f"Fakename{suffix}",
        "birth_date": "1980-02-29",
        "sex": "female",
        "address": {"line1": "1 Example Way", "city": "Springfield", "state": "IL", "postal_code": "62701"},
        "phone": "+1 555 0100",
    }
    payload.update(overrides)
    return payload


def encounter_payload(payer_id: str = "DEMO-MCR", **overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "external_id": f"ENC-{uuid.uuid4().hex[:12]}",
        "service_date": (date.today() - timedelta(days=3)).isoformat(),
        "place_of_service": "11",
        "patient": patient_payload(),
        "coverage": {"payer_id": payer_id, "member_id": f"M{uuid.uuid4().hex[:10]}", "relationship": "self"},
        "rendering_provider": {"npi": "1234567893", "name": "Dr Example Fake", "taxonomy": "207Q00000X"},
        "documentation": "DEMO NOTE: follow-up visit, stable. Synthetic text.",
        "diagnoses": [{"code": "E11.9"}, {"code": "I10"}],
        "charges": [
            {"procedure_code": "99213", "charge_cents": 12500, "units": 1, "diagnosis_pointers": [1, 2]},
            {"procedure_code": "G2211", "charge_cents": 1650, "units": 1, "diagnosis_pointers": [1]},
        ],
    }
    payload.update(overrides)
    return payload


TEST_MANIFEST_PAYERS = [{"payer_id": "DEMO-MCR", "name": "Demo Medicare"}]


@contextmanager
def http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """A real HTTP server on 127.0.0.1 (the standard library's, in a thread); yields its port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class Cli:
    """``rcm ...`` run as the operator runs it, against the test database (the administrative URL) and the
    session's data directory, whose key file opens the practices' keys; run in a thread (the command runs
    its own event loop), the settings cache cleared around it so the command reads this environment."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, admin_url: str, data_dir: Path) -> None:
        self.monkeypatch, self.admin_url, self.data_dir = monkeypatch, admin_url, data_dir

    async def __call__(self, *args: str) -> Result:
        from rcm.cli import main
        from rcm.config import get_settings

        self.monkeypatch.setenv("RCM_ENV", "test")
        self.monkeypatch.setenv("RCM_DATABASE_URL", self.admin_url)
        self.monkeypatch.setenv("RCM_DATA_DIR", self.data_dir.as_posix())
        get_settings.cache_clear()
        try:
            return await asyncio.to_thread(CliRunner().invoke, main, list(args))
        finally:
            get_settings.cache_clear()
