"""API clients of practices: issue, rotate, revoke, and the pre-tenant lookup the token endpoint needs.

Secrets are 256-bit random values; only their SHA-256 digest is stored (a slow password hash buys nothing
against a secret with this much entropy) and comparison is constant-time. The secret is returned once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy.ext.asyncio import AsyncSession

from rcm.identity.clients_repository import ApiClientRepository, client_by_presented_id, tenant_status
from rcm.identity.models import ApiClient, ApiClientStatus, AuthMethod
from rcm.identity.scopes import ALL_SCOPES, PRACTICE_CLIENT_SCOPES, Scope
from rcm.kit.db import apply_tenant_context
from rcm.kit.errors import FieldError, InvalidInput, NotFound
from rcm.kit.models import utcnow
from rcm.kit.tenant import TenantContext, TenantId
from rcm.tenancy.vocabulary import TenantStatus

AUTH_METHODS = tuple(AuthMethod)


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def secret_matches(secret: str, digest: bytes | None) -> bool:
    if digest is None:
        return False
    return hmac.compare_digest(hash_secret(secret), digest)


def new_client_id() -> str:
    return "rcm_c_" + secrets.token_hex(12)


def new_secret() -> str:
    return "rcm_s_" + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class IssuedClient:
    client: ApiClient
    secret: str | None  # shown once; None for private_key_jwt clients


def _validate(auth_method: str, scopes: list[str] | None, jwks: dict[str, Any] | None) -> list[str]:
    errors: list[FieldError] = []
    if auth_method not in AUTH_METHODS:
        errors.append(FieldError("/auth_method", f"must be one of {[m.value for m in AuthMethod]}"))
    chosen: list[str] = sorted(PRACTICE_CLIENT_SCOPES if scopes is None else set(scopes))
    if not set(chosen) <= ALL_SCOPES or Scope.ADMIN in chosen:
        errors.append(FieldError("/scopes", "contains a scope an API client may not have"))
    if auth_method == AuthMethod.PRIVATE_KEY_JWT:
        if not jwks:
            errors.append(FieldError("/jwks", "is required for private_key_jwt"))
        else:
            try:
                key_set = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
                if any(k.is_private for k in key_set.keys):
                    errors.append(FieldError("/jwks", "must hold public keys only"))
            except (JoseError, ValueError, TypeError, KeyError):
                errors.append(FieldError("/jwks", "is not a valid JWK set"))
    if errors:
        raise InvalidInput("The API client definition is invalid.", errors=errors)
    return chosen


async def create_client(
    session: AsyncSession,
    tenant_id: TenantId,
    *,
    name: str,
    auth_method: str = AuthMethod.CLIENT_SECRET_BASIC,
    scopes: list[str] | None = None,
    jwks: dict[str, Any] | None = None,
    client_id: str | None = None,
    secret: str | None = None,
) -> IssuedClient:
    """Register an API client for ``tenant_id``. ``client_id``/``secret`` are for dev seeding only."""
    chosen = _validate(auth_method, scopes, jwks)
    clients = await _bound_clients(session, tenant_id)
    plain = None
    if auth_method == AuthMethod.CLIENT_SECRET_BASIC:
        plain = secret or new_secret()
    client = ApiClient(
        tenant_id=tenant_id,
        id=uuid.uuid4(),
        client_id=client_id or new_client_id(),
        name=name,
        auth_method=AuthMethod(auth_method),
        secret_hash=hash_secret(plain) if plain else None,
        jwks=jwks if auth_method == AuthMethod.PRIVATE_KEY_JWT else None,
        scopes=chosen,
        status=ApiClientStatus.ACTIVE,
    )
    await clients.add(client)
    return IssuedClient(client=client, secret=plain)


async def _bound_clients(session: AsyncSession, tenant_id: TenantId) -> ApiClientRepository:
    """The practice's clients, the transaction bound to that practice first (RLS)."""
    context = TenantContext.single(tenant_id)
    await apply_tenant_context(session, context)
    return ApiClientRepository(session, context)


async def get_tenant_client(session: AsyncSession, tenant_id: TenantId, client_id: str) -> ApiClient:
    found = await (await _bound_clients(session, tenant_id)).by_client_id(client_id)
    if found is None:
        raise NotFound()
    return found


async def rotate_client_secret(
    session: AsyncSession, tenant_id: TenantId, client_id: str, *, jwks: dict[str, Any] | None = None
) -> IssuedClient:
    """New secret (secret clients) or new JWKS (private_key_jwt); the old credential stops working at once."""
    client = await get_tenant_client(session, tenant_id, client_id)
    if client.status != ApiClientStatus.ACTIVE:
        raise NotFound()
    plain = None
    if client.auth_method == AuthMethod.CLIENT_SECRET_BASIC:
        plain = new_secret()
        client.secret_hash = hash_secret(plain)
    else:
        _validate(client.auth_method, client.scopes, jwks)
        client.jwks = jwks
    client.rotated_at = utcnow()
    await session.flush()
    return IssuedClient(client=client, secret=plain)


async def revoke_client(session: AsyncSession, tenant_id: TenantId, client_id: str) -> ApiClient:
    client = await get_tenant_client(session, tenant_id, client_id)
    if client.status != ApiClientStatus.REVOKED:
        client.status = ApiClientStatus.REVOKED
        client.revoked_at = utcnow()
        await session.flush()
    return client


async def lookup_client_for_token_endpoint(session: AsyncSession, client_id: str) -> ApiClient | None:
    """Find a client by the id a caller presented, before any tenant context exists.

    Sets ``rcm.client_id`` for this transaction only; the ``client_lookup`` RLS policy then shows that one
    row and nothing else. The caller must still check the secret or assertion.
    """
    if not client_id or len(client_id) > 200:
        return None
    return await client_by_presented_id(session, client_id)


async def tenant_is_active(session: AsyncSession, tenant_id: uuid.UUID) -> bool:
    """Whether the client's practice may still be served: suspended and offboarded tenants get no tokens."""
    return await tenant_status(session, tenant_id) == TenantStatus.ACTIVE


async def revoke_tenant_clients(session: AsyncSession, tenant_id: TenantId) -> int:
    """Revoke every API client of a tenant (offboarding); returns how many were still usable.

    Runs in the caller's transaction, which records the offboarding event.
    """
    return await (await _bound_clients(session, tenant_id)).revoke_all(at=utcnow())
