"""JWKS, signing-key rotation, and the authentication middleware."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit.events import AuditEvent
from rcm.config import Settings
from rcm.identity.keys import (
    KEYRING_TTL_SECONDS,
    LEEWAY_SECONDS,
    KeyRing,
    retire_expired_keys,
    rotate_signing_key,
)
from rcm.identity.principal import Role
from rcm.identity.testing import mint_access_token, user_principal
from rcm.kit.db import platform_transaction
from rcm.kit.models import utcnow
from tests.identity.conftest import Mint

Client = AsyncTestClient[Litestar]
# A route behind the middleware whose guards the admin principal below satisfies.
PROTECTED = "/api/v1/admin/break-glass"


def _admin() -> object:
    return user_principal(Role.ADMIN, mfa=True)


async def test_jwks_publishes_the_active_key(
    client: Client, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    active = await KeyRing(settings).signing_key(sessions)
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert active.kid in {k["kid"] for k in keys}
    assert all("d" not in k for k in keys), "private key material must never be published"
    assert all(k["alg"] == "ES256" for k in keys)


async def test_metadata_document(client: Client, settings: Settings) -> None:
    response = await client.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    body = response.json()
    assert body["token_endpoint"] == settings.base_url + "/oauth/token"
    assert "private_key_jwt" in body["token_endpoint_auth_methods_supported"]


async def test_tokens_survive_rotation_and_die_with_retirement(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    mint: Mint,
    control_sessions: async_sessionmaker[AsyncSession],
) -> None:
    admin = user_principal(Role.ADMIN, mfa=True)
    old_token = await mint(admin)
    old_kid = (await KeyRing(settings).signing_key(sessions)).kid
    assert (await client.get(PROTECTED, headers={"Authorization": f"Bearer {old_token}"})).status_code == 200

    async with platform_transaction(control_sessions) as session:
        new = await rotate_signing_key(session, settings)
    assert new.kid != old_kid
    new_token = await mint(admin)
    jwks = {k["kid"] for k in (await client.get("/.well-known/jwks.json")).json()["keys"]}
    assert {old_kid, new.kid} <= jwks
    # The previous key stays published: tokens it signed keep working until they expire.
    assert (await client.get(PROTECTED, headers={"Authorization": f"Bearer {old_token}"})).status_code == 200
    assert (await client.get(PROTECTED, headers={"Authorization": f"Bearer {new_token}"})).status_code == 200

    async with platform_transaction(control_sessions) as session:
        retired = await retire_expired_keys(session, now=utcnow() + timedelta(hours=2))
    assert old_kid in retired
    jwks = {k["kid"] for k in (await client.get("/.well-known/jwks.json")).json()["keys"]}
    assert old_kid not in jwks
    assert new.kid in jwks
    assert (await client.get(PROTECTED, headers={"Authorization": f"Bearer {old_token}"})).status_code == 401
    assert (await client.get(PROTECTED, headers={"Authorization": f"Bearer {new_token}"})).status_code == 200


async def test_missing_token_is_401_problem_with_bearer_challenge(
    client: Client, audit_log: list[AuditEvent]
) -> None:
    response = await client.get(PROTECTED)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["status"] == 401
    assert [(e.event_type, e.detail["reason"]) for e in audit_log] == [("access.denied", "no_token")]


async def test_garbage_and_foreign_tokens_are_401(client: Client) -> None:
    for header in ("Bearer not-a-jwt", "Bearer a.b.c", "Basic dXNlcjpwYXNz", "Bearer "):
        response = await client.get(PROTECTED, headers={"Authorization": header})
        assert response.status_code == 401, header
        assert "Bearer" in response.headers["www-authenticate"]


async def test_expired_token_is_401(
    client: Client, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    token = await mint_access_token(
        user_principal(Role.ADMIN, mfa=True),
        sessions=sessions,
        settings=settings,
        now=utcnow() - timedelta(hours=1),
    )
    response = await client.get(PROTECTED, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_token_for_another_audience_or_issuer_is_401(
    client: Client, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    other = settings.model_copy(update={"base_url": "https://other-rcm.example"})
    token = await mint_access_token(user_principal(Role.ADMIN, mfa=True), sessions=sessions, settings=other)
    response = await client.get(PROTECTED, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


async def test_public_routes_need_no_token(client: Client) -> None:
    for path in (
        "/healthz",
        "/readyz",
        "/.well-known/jwks.json",
        "/docs/openapi.json",
        "/dev/oidc/jwks",
        "/dev/oidc/.well-known/openid-configuration",
    ):
        response = await client.get(path)
        assert response.status_code == 200, path


async def test_demoted_key_stays_published_while_other_processes_may_still_sign_with_it(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    control_sessions: async_sessionmaker[AsyncSession],
) -> None:
    # Another API process notices a rotation only when its key ring reloads (up to KEYRING_TTL_SECONDS
    # later) and keeps signing with the old key meanwhile: the last such token expires TTL after that.
    rotated_at = utcnow()
    old_kid = (await KeyRing(settings).signing_key(sessions)).kid
    async with platform_transaction(control_sessions) as session:
        await rotate_signing_key(session, settings, now=rotated_at)
    last_signed_elsewhere = rotated_at + timedelta(seconds=KEYRING_TTL_SECONDS)
    last_expiry = last_signed_elsewhere + timedelta(seconds=settings.access_token_ttl_seconds)
    async with platform_transaction(control_sessions) as session:
        early = await retire_expired_keys(session, now=last_expiry)
    assert old_kid not in early
    async with platform_transaction(control_sessions) as session:
        late = await retire_expired_keys(session, now=last_expiry + timedelta(seconds=LEEWAY_SECONDS + 1))
    assert old_kid in late


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json_b64(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


async def _valid_claims_and_key(
    client: Client, sessions: async_sessionmaker[AsyncSession], settings: Settings, mint: Mint
) -> tuple[str, dict[str, Any], ECKey]:
    """A genuine token (which must pass), its payload segment, and the active key."""
    genuine = await mint(_admin())
    assert (await client.get(PROTECTED, headers={"Authorization": f"Bearer {genuine}"})).status_code == 200
    payload = genuine.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return payload, claims, await KeyRing(settings).signing_key(sessions)


async def test_alg_none_is_refused(
    client: Client, sessions: async_sessionmaker[AsyncSession], settings: Settings, mint: Mint
) -> None:
    payload, _, active = await _valid_claims_and_key(client, sessions, settings, mint)
    for header in ({"alg": "none"}, {"alg": "none", "kid": active.kid, "typ": "at+jwt"}, {"alg": "None"}):
        for signature in ("", "AAAA"):
            forged = f"{_json_b64(header)}.{payload}.{signature}"
            response = await client.get(PROTECTED, headers={"Authorization": f"Bearer {forged}"})
            assert response.status_code == 401, (header, signature)


async def test_hs256_keyed_with_our_public_key_is_refused(
    client: Client, sessions: async_sessionmaker[AsyncSession], settings: Settings, mint: Mint
) -> None:
    # The classic confusion: a verifier that lets the token pick the algorithm would HMAC-check it with
    # the "key" it has, our public key, which anyone can fetch.
    payload, _, active = await _valid_claims_and_key(client, sessions, settings, mint)
    published = next(
        k for k in (await client.get("/.well-known/jwks.json")).json()["keys"] if k["kid"] == active.kid
    )
    secrets = (
        json.dumps(published).encode(),
        json.dumps(published, separators=(",", ":"), sort_keys=True).encode(),
        active.as_pem(private=False),
    )
    for secret in secrets:
        signing_input = f"{_json_b64({'alg': 'HS256', 'kid': active.kid, 'typ': 'at+jwt'})}.{payload}"
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        forged = f"{signing_input}.{_b64(mac)}"
        response = await client.get(PROTECTED, headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_token_signed_by_a_key_outside_our_jwks_is_refused(
    client: Client, sessions: async_sessionmaker[AsyncSession], settings: Settings, mint: Mint
) -> None:
    _, claims, active = await _valid_claims_and_key(client, sessions, settings, mint)
    stranger = ECKey.generate_key("P-256", private=True, auto_kid=True)
    # Same claims, ES256, by a key we never published: under its own kid, and claiming our active kid.
    for kid in (stranger.kid, active.kid, None):
        header = {"alg": "ES256", "typ": "at+jwt", **({"kid": kid} if kid else {})}
        forged = jwt.encode(header, claims, stranger, algorithms=["ES256"])
        response = await client.get(PROTECTED, headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401, kid
