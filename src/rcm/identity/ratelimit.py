"""Per-caller rate limits: each API client (or person) has its own window; 429 carries Retry-After."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.middleware.rate_limit import RateLimitConfig

from rcm.config import Settings
from rcm.identity.principal import Principal


def caller_identifier(request: Request[Any, Any, Any]) -> str:
    user = request.scope.get("user")
    if isinstance(user, Principal):
        return f"client:{user.client_id}" if user.client_id else f"user:{user.subject}"
    # Unauthenticated callers (public routes are excluded) share a window per address.
    return f"ip:{request.client.host if request.client else 'unknown'}"


def rate_limit_config(settings: Settings) -> RateLimitConfig:
    # The default store is in-process memory: with several API replicas each enforces its own window.
    return RateLimitConfig(
        rate_limit=("minute", settings.rate_limit_per_minute),
        identifier_for_request=caller_identifier,
        exclude_opt_key="public",
    )
