"""Property-based fuzzing of every route in the app's own OpenAPI document: no input may produce a 5xx.

The real app runs under uvicorn on a loopback port in a background thread (so its lifespan, middleware and
connection pool are the production ones). Each operation gets positive and negative cases from
schemathesis; callers carry a real practice-client token for a fresh tenant, the tenant's slug replaces the
``tenant_slug`` path parameter, and generated UUIDs in paths are swapped for objects that exist, so cases
reach validation and the services instead of stopping at the tenant gate. Routes the practice client may
not use (audit, admin, break-glass, OAuth) run with the same token and must refuse with a 4xx.

A 5xx on bad input is a bug: the answer must be a problem document naming the field.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.app import create_app
from rcm.config import Settings
from rcm.identity.testing import client_principal, mint_access_token
from rcm.kit.errors import PROBLEM_JSON
from rcm.kit.tenant import TenantId
from rcm.tenancy.models import Tenant
from tests.support import encounter_payload, patient_payload

# Bounded for CI on two cores: 30 examples per operation and mode stays well under a minute. A deeper local
# hunt: RCM_FUZZ_EXAMPLES=500.
MAX_EXAMPLES = int(os.environ.get("RCM_FUZZ_EXAMPLES", "30"))


@dataclass(frozen=True, slots=True)
class LiveServer:
    base_url: str


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def live_server(settings: Settings) -> Iterator[LiveServer]:
    """The app under uvicorn in a thread with its own event loop; lifespan on, as in production."""
    port = _free_port()
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        lifespan="on",
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    # uvicorn installs signal handlers only on the main thread, so running it in a thread is safe.
    thread = threading.Thread(target=server.run, name="fuzz-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start for the fuzz run")
        time.sleep(0.05)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@dataclass(frozen=True, slots=True)
class FuzzTarget:
    base_url: str
    slug: str
    token: str
    ids: dict[str, str]  # path parameter name -> id of an object that exists in the tenant


@pytest.fixture(scope="session")
async def fuzz_target(
    live_server: LiveServer,
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> FuzzTarget:
    """A fresh tenant with a practice-client token, one patient, one provider and one encounter."""
    from tests.conftest import make_tenant

    tenant: Tenant = await make_tenant(control_sessions, "fuzz")
    # An hour: the fuzz runs take minutes, many more on a loaded machine, and must not outlive the token.
    token = await mint_access_token(
        client_principal(TenantId(tenant.id)), sessions=sessions, settings=settings, ttl=3600
    )
    headers = {"Authorization": f"Bearer {token}"}
    base = f"{live_server.base_url}/api/v1/tenants/{tenant.slug}"

    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:

        async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            response = await http.post(path, json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
            assert response.status_code == 201, response.text
            created: dict[str, Any] = response.json()
            return created

        encounter = await post("/encounters", encounter_payload())
        provider = await post("/providers", {"npi": "1679576722", "name": "Dr Fuzz Fake"})
        await post("/patients", patient_payload())
    return FuzzTarget(
        base_url=live_server.base_url,
        slug=tenant.slug,
        token=token,
        ids={
            "patient_id": encounter["patient_id"],
            "provider_id": provider["id"],
            "encounter_id": encounter["id"],
        },
    )


@pytest.fixture(scope="session")
def fuzz_schema(fuzz_target: FuzzTarget) -> Any:
    return schemathesis.openapi.from_url(f"{fuzz_target.base_url}/docs/openapi.json")


def _is_uuid(value: object) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def _exercise(case: Any, target: FuzzTarget) -> None:
    path_parameters = case.path_parameters
    if path_parameters is not None:
        if "tenant_slug" in path_parameters:
            path_parameters["tenant_slug"] = target.slug
        for name, existing in target.ids.items():
            # Well-formed ids point at a real object so the case reaches the service; malformed ones stay.
            if name in path_parameters and _is_uuid(path_parameters[name]):
                path_parameters[name] = existing
    headers = {"Authorization": f"Bearer {target.token}", "Idempotency-Key": uuid.uuid4().hex}
    response = case.call(base_url=target.base_url, headers=headers, timeout=30)
    case.validate_response(response, checks=[not_a_server_error])
    if 200 <= response.status_code < 300:
        # Successful answers must match what the document promises. Idempotent POSTs return pre-encoded
        # bytes, which the document describes as a plain string, so only their content type is checked.
        checks = [content_type_conformance]
        if case.method == "GET":
            checks.append(response_schema_conformance)
        case.validate_response(response, checks=checks)
    elif response.status_code != 405 and not case.path.startswith("/oauth/"):
        # Every refusal is a problem document (RFC 9457), never an HTML page or a bare string. The token
        # endpoint answers in RFC 6749's own error format instead, the FHIR base with an OperationOutcome.
        content_type = (response.headers.get("content-type") or [""])[0]
        expected = "application/fhir+json" if case.path.startswith("/fhir/") else PROBLEM_JSON
        assert content_type.startswith(expected), (case.operation.label, response.status_code)


# schemathesis's own pytest parametrization (``from_fixture``) does not run under pytest 9, so each
# operation gets its own hypothesis test here; every failing operation is reported, not just the first.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_no_route_answers_5xx(fuzz_schema: Any, fuzz_target: FuzzTarget, mode: GenerationMode) -> None:
    failures: list[str] = []
    operations = [result.ok() for result in fuzz_schema.get_all_operations()]
    assert len(operations) > 20, "the OpenAPI document lost its routes"
    for operation in operations:

        @hypothesis_settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            # A real server and database are slow by hypothesis's standards; that is not what we test.
            suppress_health_check=list(HealthCheck),
            print_blob=True,
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: Any) -> None:
            _exercise(case, fuzz_target)

        try:
            run()
        except Unsatisfiable:
            # Nothing to negate (no parameters, no body): negative mode has no case for this operation.
            if mode is GenerationMode.POSITIVE:
                raise
        except (Exception, BaseExceptionGroup) as exc:  # every failing operation is reported below
            failures.append(f"{operation.label}: {type(exc).__name__}: {exc}")
    assert not failures, "\n\n".join(failures)


def test_fuzz_target_reaches_the_services(fuzz_target: FuzzTarget) -> None:
    """The fuzz run is only worth something if its token and slug get past the tenant gate."""

    response = httpx.get(
        f"{fuzz_target.base_url}/api/v1/tenants/{fuzz_target.slug}/encounters/{fuzz_target.ids['encounter_id']}",
        headers={"Authorization": f"Bearer {fuzz_target.token}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
