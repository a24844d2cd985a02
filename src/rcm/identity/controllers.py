"""HTTP routes of the identity package: token endpoint, JWKS and metadata, dev issuer, admin.

Break-glass routes live in ``rcm.identity.break_glass_routes``.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from rcm.config import Settings
from rcm.idempotency.service import IdemKey, created_responses, run_idempotent
from rcm.identity import audit_hooks
from rcm.identity.clients import create_client, revoke_client, rotate_client_secret
from rcm.identity.guards import requires_mfa, requires_roles, requires_scopes
from rcm.identity.middleware import current_principal
from rcm.identity.models import ApiClient, ApiClientStatus, AuthMethod
from rcm.identity.oauth_docs import TOKEN_RESPONSES, TokenRequest
from rcm.identity.oidc import DEV_AUDIENCE, DEV_ISSUER, dev_issuer_jwks, mint_dev_id_token
from rcm.identity.principal import Role
from rcm.identity.scopes import ADMIN, ALL_SCOPES, Scope, parse_scopes
from rcm.identity.server import CLIENT_ASSERTION_TYPE, JWT_BEARER, TokenService
from rcm.identity.status import status_changed
from rcm.identity.tokens import issuer, token_endpoint_url
from rcm.kit.control import control_sessions, control_transaction
from rcm.kit.db import apply_tenant_context
from rcm.kit.errors import NotFound, RCMError
from rcm.kit.openapi import FORM_BODY_OPT
from rcm.kit.tenant import TenantContext, TenantId
from rcm.tenancy.manifest import validate_manifest
from rcm.tenancy.models import Tenant
from rcm.tenancy.scope import TenantScope
from rcm.tenancy.service import apply_manifest, tenant_by_slug

PUBLIC = {"public": True}
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"


def _oauth_problem(_: Request[Any, Any, Any], exc: RCMError) -> Response[dict[str, Any]]:
    """Refusals raised before the handler (an unknown query parameter...) in the token endpoint's own
    RFC 6749 format, naming what is at fault."""
    named = "; ".join(f"{e.pointer} {e.detail}" for e in exc.errors)
    return _oauth_error(400, "invalid_request", f"{exc.detail} {named}".strip())


class OAuthController(Controller):
    path = ""
    tags = ["oauth"]
    opt = PUBLIC
    exception_handlers = {RCMError: _oauth_problem}

    @post(
        "/oauth/token",
        status_code=200,
        summary="OAuth2 token endpoint (client_credentials, RFC 7523 jwt-bearer)",
        description=(
            "Form-encoded. `client_credentials` with HTTP Basic (`client_secret_basic`) or a signed client "
            "assertion (`private_key_jwt`, aud = this URL); `urn:ietf:params:oauth:grant-type:jwt-bearer` "
            "with an OIDC ID token from a trusted issuer as `assertion`. Errors are RFC 6749 §5.2 JSON."
        ),
        responses=TOKEN_RESPONSES,
        opt={FORM_BODY_OPT: TokenRequest},
    )
    async def token(self, request: Request[Any, Any, Any], state: State) -> Response[dict[str, Any]]:
        if request.content_type[0] != FORM_MEDIA_TYPE:
            # RFC 6749 §4.4.2: parameters travel form-encoded; JSON would read as a missing grant_type.
            return _oauth_error(400, "invalid_request", f"The Content-Type header must be {FORM_MEDIA_TYPE}.")
        form = await request.form()
        single: dict[str, str] = {}
        for key in form:
            values = form.getall(key)
            if len(values) != 1 or not isinstance(values[0], str):
                # RFC 6749 §3.2: request parameters MUST NOT be included more than once.
                return _oauth_error(400, "invalid_request", "Repeated or non-text parameter.")
            single[key] = values[0]
        service: TokenService = state.identity_tokens
        result = await service.exchange(
            state.sessions,
            single,
            request.headers,
            request=audit_hooks.request_info(request),
            control=control_sessions(state),
        )
        return Response(result.body, status_code=result.status, headers=result.headers)

    @get("/.well-known/jwks.json", summary="Public keys that verify our access tokens (active + previous)")
    async def jwks(self, state: State) -> Response[dict[str, Any]]:
        body = await state.identity_keyring.jwks(state.sessions)
        return Response(body, headers={"Cache-Control": "public, max-age=60"})

    @get("/.well-known/oauth-authorization-server", summary="RFC 8414 authorization server metadata")
    async def metadata(self, state: State) -> dict[str, Any]:
        settings: Settings = state.settings
        base = issuer(settings)
        return {
            "issuer": base,
            "token_endpoint": token_endpoint_url(settings),
            "jwks_uri": f"{base}/.well-known/jwks.json",
            "grant_types_supported": ["client_credentials", JWT_BEARER],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256", "PS256", "EdDSA"],
            "scopes_supported": sorted(ALL_SCOPES),
            "response_types_supported": [],
            "client_assertion_types_supported": [CLIENT_ASSERTION_TYPE],
        }


class DevLogin(msgspec.Struct, forbid_unknown_fields=True):
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=320)]
    mfa: bool = False


class DevIssuerController(Controller):
    """DEVELOPMENT ONLY — an OIDC issuer WITHOUT PASSWORDS: anyone who can reach it can log in as anyone.

    Registered only when RCM_DEV_ISSUER_ENABLED is true and RCM_ENV is not "prod".
    """

    path = "/dev/oidc"
    tags = ["dev issuer (development only, no passwords)"]
    opt = PUBLIC

    @get("/.well-known/openid-configuration", summary="DEV ONLY: discovery document of the dev issuer")
    async def discovery(self, state: State) -> dict[str, Any]:
        base = issuer(state.settings)
        return {
            "issuer": DEV_ISSUER,
            "jwks_uri": f"{base}/dev/oidc/jwks",
            "id_token_signing_alg_values_supported": ["ES256"],
            "subject_types_supported": ["public"],
            "response_types_supported": ["code", "id_token"],
            "grant_types_supported": ["authorization_code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "authorization_endpoint": f"{base}/dev/oidc/authorize",
            "token_endpoint": f"{base}/dev/oidc/token",
            "audience": DEV_AUDIENCE,
            "x-rcm-login_endpoint": f"{base}/dev/oidc/login",
        }

    @get("/jwks", summary="DEV ONLY: the dev issuer's public keys")
    async def jwks(self, state: State) -> dict[str, Any]:
        return dev_issuer_jwks(state.settings)

    @post("/login", status_code=200, summary="DEV ONLY, NO PASSWORD: an ID token for any email")
    async def login(self, data: JSONBody[DevLogin], state: State) -> dict[str, str]:
        return {"id_token": mint_dev_id_token(state.settings, email=data.email, mfa=data.mfa)}


async def _system_tenant_scope(
    session: AsyncSession, request: Request[Any, Any, Any], state: State, tenant: Tenant, *, access: str
) -> TenantScope:
    """A tenant scope for platform-level writes into one tenant (idempotency records live per tenant)."""
    context = TenantContext.single(TenantId(tenant.id))
    await apply_tenant_context(session, context)
    return TenantScope(
        session=session,
        context=context,
        principal=current_principal(request),
        keyring=await state.keystore.keyring(session, context.tenant_id),
        request=audit_hooks.request_info(request),
        manifest=tenant.manifest,
        access=access,
    )


class ClientCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    auth_method: str = "client_secret_basic"
    scopes: list[str] | None = None
    jwks: dict[str, Any] | None = None


class ClientRotate(msgspec.Struct, forbid_unknown_fields=True):
    jwks: dict[str, Any] | None = None


class ApiClientOut(msgspec.Struct):
    client_id: str
    tenant_id: uuid.UUID
    name: str
    auth_method: AuthMethod
    scopes: list[Scope]
    status: ApiClientStatus
    # Shown once, on issue and rotation of a client_secret_basic client; never retrievable again.
    client_secret: str | None = None


class TenantOnboarded(msgspec.Struct):
    id: uuid.UUID
    slug: str
    created: bool


class AdminController(Controller):
    """Platform administration: admin role, the admin scope and a second factor on every route."""

    path = "/api/v1/admin"
    tags = ["admin"]
    guards = [requires_roles(Role.ADMIN), requires_scopes(ADMIN), requires_mfa]

    @post("/tenants", summary="Onboard or update a practice from its manifest (tenants/schema.json)")
    async def onboard(
        self, data: JSONBody[dict[str, Any]], request: Request[Any, Any, Any], state: State
    ) -> TenantOnboarded:
        # Validated before any transaction: a bad manifest is a 422 naming its fields.
        manifest = validate_manifest(data)
        async with control_transaction(state) as session:
            tenant, created = await apply_manifest(session, manifest)
            await audit_hooks.tenant_onboarded(
                session,
                request=audit_hooks.request_info(request),
                principal=current_principal(request),
                tenant_id=TenantId(tenant.id),
                created=created,
            )
        return TenantOnboarded(id=tenant.id, slug=tenant.slug, created=created)

    @post(
        "/tenants/{slug:str}/clients",
        summary="Issue API client credentials (the secret is shown once)",
        responses=created_responses(ApiClientOut),
    )
    async def issue_client(
        self,
        slug: FromPath[str],
        data: JSONBody[ClientCreate],
        request: Request[Any, Any, Any],
        state: State,
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        async def issue(session: AsyncSession, tenant_id: TenantId) -> tuple[ApiClient, str | None]:
            issued = await create_client(
                session,
                tenant_id,
                name=data.name,
                auth_method=data.auth_method,
                scopes=data.scopes,
                jwks=data.jwks,
            )
            return issued.client, issued.secret

        return await _client_change(
            request, state, slug=slug, idempotency_key=idempotency_key, change="issue", status=201, act=issue
        )

    @post(
        "/tenants/{slug:str}/clients/{client_id:str}/rotate",
        status_code=200,
        summary="Rotate a client's credential",
        responses=created_responses(ApiClientOut, status=200),
    )
    async def rotate_client(
        self,
        *,
        slug: FromPath[str],
        client_id: FromPath[str],
        request: Request[Any, Any, Any],
        state: State,
        data: JSONBody[ClientRotate | None] = None,
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        async def rotate(session: AsyncSession, tenant_id: TenantId) -> tuple[ApiClient, str | None]:
            issued = await rotate_client_secret(
                session, tenant_id, client_id, jwks=data.jwks if data else None
            )
            return issued.client, issued.secret

        return await _client_change(
            request,
            state,
            slug=slug,
            idempotency_key=idempotency_key,
            change="rotate",
            status=200,
            act=rotate,
        )

    @post(
        "/tenants/{slug:str}/clients/{client_id:str}/revoke",
        status_code=200,
        summary="Revoke a client",
        responses=created_responses(ApiClientOut, status=200),
    )
    async def revoke(
        self,
        slug: FromPath[str],
        client_id: FromPath[str],
        request: Request[Any, Any, Any],
        state: State,
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        async def revoke(session: AsyncSession, tenant_id: TenantId) -> tuple[ApiClient, str | None]:
            return await revoke_client(session, tenant_id, client_id), None

        return await _client_change(
            request,
            state,
            slug=slug,
            idempotency_key=idempotency_key,
            change="revoke",
            status=200,
            act=revoke,
        )


async def _tenant(session: Any, slug: str) -> Tenant:
    tenant = await tenant_by_slug(session, slug)
    if tenant is None:
        raise NotFound()
    return tenant


async def _client_change(
    request: Request[Any, Any, Any],
    state: State,
    *,
    slug: str,
    idempotency_key: str | None,
    change: str,
    status: int,
    act: Callable[[AsyncSession, TenantId], Awaitable[tuple[ApiClient, str | None]]],
) -> Response[bytes]:
    """Issue, rotate or revoke a practice's API client: once per Idempotency-Key, audited in the same
    transaction as the change (as the control role: ``rcm_app`` cannot write API clients)."""
    async with control_transaction(state) as session:
        tenant = await _tenant(session, slug)
        scope = await _system_tenant_scope(session, request, state, tenant, access="platform_admin")

        async def produce() -> tuple[int, ApiClientOut]:
            client, secret = await act(session, TenantId(tenant.id))
            await _client_audit(session, request, change, client)
            return status, _client_out(client, secret)

        response = await run_idempotent(
            scope, request, key=idempotency_key, resource_type="api_client", produce=produce
        )
    status_changed()  # a revoked client's tokens stop working in this process at once
    return response


async def _client_audit(
    session: AsyncSession, request: Request[Any, Any, Any], change: str, client: ApiClient
) -> None:
    await audit_hooks.api_client_changed(
        session,
        request=audit_hooks.request_info(request),
        principal=current_principal(request),
        change=change,
        tenant_id=TenantId(client.tenant_id),
        client_row_id=client.id,
    )


def _client_out(client: ApiClient, secret: str | None) -> ApiClientOut:
    return ApiClientOut(
        client_id=client.client_id,
        tenant_id=client.tenant_id,
        name=client.name,
        auth_method=client.auth_method,
        scopes=sorted(parse_scopes(client.scopes)),
        status=client.status,
        client_secret=secret,
    )


def _oauth_error(status: int, error: str, description: str) -> Response[dict[str, Any]]:
    return Response(
        {"error": error, "error_description": description},
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )
