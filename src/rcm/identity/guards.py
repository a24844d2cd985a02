"""Litestar guards: roles, scopes and MFA. A refusal is a 403 problem document and an audit event."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from rcm.identity import audit_hooks
from rcm.identity.middleware import current_principal
from rcm.identity.principal import Principal, Role
from rcm.identity.scopes import Scope
from rcm.kit.db import platform_transaction
from rcm.kit.errors import Forbidden
from rcm.kit.tenant import TenantId
from rcm.tenancy.repository import tenant_by_slug

Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]


class MissingRole(Forbidden):
    title = "Role required"


class MissingScope(Forbidden):
    title = "Scope required"


class MfaRequired(Forbidden):
    title = "Multi-factor authentication required"


async def _deny(connection: ASGIConnection[Any, Any, Any, Any], principal: Principal, reason: str) -> None:
    sessions = connection.app.state.sessions
    await audit_hooks.access_denied(
        sessions,
        request=audit_hooks.request_info(connection),
        principal=principal,
        reason=reason,
        tenant_id=await _probed_tenant(sessions, connection),
    )


async def _probed_tenant(sessions: Any, connection: ASGIConnection[Any, Any, Any, Any]) -> TenantId | None:
    """The practice a refused request named in its path: the refusal belongs in that practice's trail (its
    owner and auditors must see who tried), not only in the platform's. The answer stays the same 403."""
    slug = connection.path_params.get("tenant_slug")
    if not isinstance(slug, str):  # (a slug with a NUL byte is no tenant: the lookup answers None)
        return None
    async with platform_transaction(sessions) as session:
        tenant = await tenant_by_slug(session, slug)
    return TenantId(tenant.id) if tenant is not None else None


def requires_roles(*roles: Role) -> Guard:
    """The caller must hold at least one of ``roles``."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = current_principal(connection)
        if not principal.has_role(*roles):
            await _deny(connection, principal, "missing_role")
            raise MissingRole("Your role does not allow this operation.")

    return guard


def requires_scopes(*scopes: Scope) -> Guard:
    """The token must carry every one of ``scopes``."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = current_principal(connection)
        if not set(scopes) <= principal.scopes:
            await _deny(connection, principal, "missing_scope")
            raise MissingScope("The access token lacks a scope this operation needs.")

    # Read by the OpenAPI finishing (kit/openapi.py): the operation's oauth2 security lists these scopes.
    guard.openapi_scopes = frozenset(scopes)  # type: ignore[attr-defined]
    return guard


def requires_any_scope(*scopes: Scope) -> Guard:
    """The token must carry at least one of ``scopes`` (a narrow scope beside the broad one it is part of)."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = current_principal(connection)
        if not set(scopes) & principal.scopes:
            await _deny(connection, principal, "missing_scope")
            raise MissingScope("The access token lacks a scope this operation needs.")

    # Read by the OpenAPI finishing: one security requirement per alternative.
    guard.openapi_scope_choices = tuple(frozenset({s}) for s in scopes)  # type: ignore[attr-defined]
    return guard


async def requires_mfa(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """The person logged in with a second factor (platform administration, break-glass review)."""
    principal = current_principal(connection)
    if not principal.mfa:
        await _deny(connection, principal, "mfa_required")
        raise MfaRequired("Log in again with multi-factor authentication for this operation.")
