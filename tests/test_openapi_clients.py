"""The OpenAPI document serves real clients, proven with real tools against a real server on loopback:

- Redocly's CLI lints the served document under its recommended rules: no error, no warning;
- openapi-python-client generates a client from it, and that client performs the README's practice task
  as written there (token by client credentials, an encounter POSTed with an Idempotency-Key and retried,
  its status read);
- the docs pages load only the app's own assets (no CDN) and can be turned off.

The Redocly check needs node and npm (npx fetches the pinned CLI once into the npm cache, ~/.npm); it is
skipped, with that reason shown, only where they are absent.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.app import create_app
from rcm.config import Settings
from rcm.identity.clients import create_client
from rcm.kit.db import platform_transaction
from rcm.kit.tenant import TenantId
from rcm.surface import OPENAPI_JSON
from tests.live import serving

ROOT = Path(__file__).resolve().parents[1]
REDOCLY = "@redocly/cli@2.77.0"


@pytest.fixture(scope="module")
def base_url(settings: Settings) -> Iterator[str]:
    with serving(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def served_document(base_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    response = httpx.get(base_url + OPENAPI_JSON, timeout=30)
    assert response.status_code == 200
    path = tmp_path_factory.mktemp("openapi") / "openapi.json"
    path.write_bytes(response.content)
    return path


def test_no_server_banner_on_a_real_socket(base_url: str) -> None:
    response = httpx.get(base_url + "/healthz", timeout=30)
    assert response.status_code == 200
    assert "server" not in response.headers
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_the_document_is_the_same_on_every_start(settings: Settings, served_document: Path) -> None:
    """No generated (random) examples: another start serves the byte-identical document."""
    first = json.loads(served_document.read_bytes())  # noqa: ASYNC240 - a small local file
    async with AsyncTestClient(app=create_app(settings)) as again:
        second = (await again.get(OPENAPI_JSON)).json()
    assert first == second


def test_redocly_recommended_lint_is_clean(served_document: Path) -> None:
    npx = shutil.which("npx")
    if npx is None or shutil.which("node") is None:
        pytest.skip("node/npx not installed: Redocly's CLI cannot run here")
    done = subprocess.run(  # noqa: S603 - fixed arguments, our own document
        [npx, "--yes", REDOCLY, "lint", "--extends=recommended", "--format=json", str(served_document)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.stdout.strip(), done.stderr[-2000:]
    report = json.loads(done.stdout)
    problems = [
        f"{p['severity']} {p['ruleId']}: {p['message']} at {p['location'][0]['pointer']}"
        for p in report["problems"]
    ]
    assert report["totals"]["errors"] == 0, problems
    assert report["totals"]["warnings"] == 0, problems


def _readme_practice_task() -> tuple[dict[str, Any], str]:
    """The encounter and the Idempotency-Key of the README's practice walk-through, as written there."""
    readme = (ROOT / "README.md").read_text()
    encounter = re.search(r"ENCOUNTER='(\{.*?\})'", readme, re.DOTALL)
    key = re.search(r'-H "Idempotency-Key: ([^"]+)"', readme)
    assert encounter is not None, "README's practice task lost its ENCOUNTER"
    assert key is not None, "README's practice task lost its Idempotency-Key"
    return json.loads(encounter.group(1)), key.group(1)


@pytest.fixture
def generated_client(served_document: Path, tmp_path: Path) -> Iterator[Any]:
    """``openapi-python-client`` run on the served document; the generated package, imported."""
    config = tmp_path / "generator.json"
    # The audit export's FHIR NDJSON stream is a download to the generator (it knows no such media type).
    config.write_text(
        json.dumps({"content_type_overrides": {"application/fhir+ndjson": "application/octet-stream"}})
    )
    tool = Path(sys.executable).with_name("openapi-python-client")
    done = subprocess.run(  # noqa: S603 - fixed arguments, our own document
        [
            str(tool),
            "generate",
            "--path",
            str(served_document),
            "--meta",
            "none",
            "--output-path",
            str(tmp_path / "rcm_client"),
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": f"{tool.parent}:/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stdout, done.stdout
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module("rcm_client")
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == "rcm_client" or m.startswith("rcm_client.")]:
            del sys.modules[name]


async def test_a_generated_client_performs_the_readme_practice_task(
    generated_client: Any,
    base_url: str,
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
) -> None:
    from tests.conftest import make_tenant

    tenant = await make_tenant(control_sessions, "gen")
    async with platform_transaction(control_sessions) as session:
        issued = await create_client(session, TenantId(tenant.id), name="Generated client")
    encounter_json, idempotency_key = _readme_practice_task()

    client_module = importlib.import_module("rcm_client.client")
    models = importlib.import_module("rcm_client.models")
    token_api = importlib.import_module("rcm_client.api.oauth.oauth_token")
    create_api = importlib.import_module("rcm_client.api.encounters.encounter_create")
    status_api = importlib.import_module("rcm_client.api.encounters.encounter_status")

    # 1. A token by client credentials (HTTP Basic, as `curl -u` does in the README).
    anonymous = client_module.Client(
        base_url=base_url, httpx_args={"auth": (issued.client.client_id, issued.secret)}
    )
    token = await token_api.asyncio(
        client=anonymous, body=models.TokenRequest(grant_type=models.GrantType.CLIENT_CREDENTIALS)
    )
    assert isinstance(token, models.TokenResponse), token
    assert token.token_type == "Bearer"

    # 2. The README's encounter, with its Idempotency-Key; the retry answers the first response again.
    api = client_module.AuthenticatedClient(base_url=base_url, token=token.access_token)
    body = models.EncounterCreate.from_dict(encounter_json)
    first = await create_api.asyncio_detailed(
        tenant.slug, client=api, body=body, idempotency_key=idempotency_key
    )
    assert first.status_code == 201, first.content
    assert isinstance(first.parsed, models.Encounter)
    retry = await create_api.asyncio_detailed(
        tenant.slug, client=api, body=body, idempotency_key=idempotency_key
    )
    assert retry.status_code == 201
    assert retry.parsed.id == first.parsed.id
    assert retry.headers["idempotent-replayed"] == "true"

    # 3. Its status.
    status = await status_api.asyncio(tenant.slug, first.parsed.id, client=api)
    assert isinstance(status, models.EncounterStatusView), status
    assert status.status == models.EncounterStatus.NEEDS_CODING

    # A refusal comes back typed too: another practice's slug is a 404 problem document.
    missing = await status_api.asyncio("no-such-practice", first.parsed.id, client=api)
    assert isinstance(missing, models.Problem)
    assert missing.status == 404


def test_docs_pages_load_only_their_own_assets(base_url: str) -> None:
    page = httpx.get(base_url + "/docs", timeout=30)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    urls = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page.text)
    assert urls, page.text[:500]
    for url in urls:
        assert url.startswith("/docs/assets/"), f"the docs page loads {url} from elsewhere"
        asset = httpx.get(base_url + url, timeout=30)
        assert asset.status_code == 200, url
        assert len(asset.content) > 100
        assert "'unsafe-inline'" in asset.headers["content-security-policy"]
    assert "://" not in "".join(urls)


async def test_docs_pages_can_be_turned_off(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"api_docs": False}))
    async with AsyncTestClient(app=app) as client:
        assert (await client.get("/docs/assets/swagger-ui-bundle.js")).status_code == 404
        root = await client.get("/docs")
        assert not root.headers["content-type"].startswith("text/html")
        document = await client.get(OPENAPI_JSON)
        assert document.status_code == 200
        assert document.json()["components"]["securitySchemes"]
