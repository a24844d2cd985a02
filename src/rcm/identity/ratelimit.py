"""Rate limits, in two layers; a 429 carries Retry-After (``kit/errors.py``, from RateLimit-Reset).

1. Per source address, BEFORE authentication, on every route (public ones, ``/oauth/token`` and the dev
   issuer included): every refused token request and every 401 writes an audit row, so unauthenticated
   traffic must be bounded before it reaches the authentication layer.
2. Per caller, AFTER authentication: each API client (or person) has its own window.

The store is in-process memory: with several API replicas each enforces its own windows. The address is
the ASGI client address; behind a proxy the server must be told which proxies to believe for it (uvicorn
``--forwarded-allow-ips``), or every caller shares the proxy's window.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.middleware.rate_limit import CacheObject, RateLimitConfig, RateLimitMiddleware
from litestar.types import Send

from rcm.config import Settings
from rcm.identity.principal import Principal


def _address(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


def caller_identifier(request: Request[Any, Any, Any]) -> str:
    user = request.scope.get("user")
    if isinstance(user, Principal):
        return f"client:{user.client_id}" if user.client_id else f"user:{user.subject}"
    # Unauthenticated callers (public routes are excluded) share a window per address.
    return f"ip:{_address(request)}"


def peer_identifier(request: Request[Any, Any, Any]) -> str:
    return f"peer:{_address(request)}"


class PeerRateLimitMiddleware(RateLimitMiddleware):
    """The per-address limiter. Its class name keys its windows apart from the per-caller limiter's."""

    def create_send_wrapper(self, send: Send, cache_object: CacheObject) -> Send:
        # Successful responses carry the per-caller window's RateLimit-* headers, the one a client paces
        # itself by; this limiter's headers appear only on the 429 it raises.
        return send


def peer_rate_limit_config(settings: Settings) -> RateLimitConfig:
    """Per source address, every route, placed before authentication (see the identity plugin)."""
    return RateLimitConfig(
        rate_limit=("minute", settings.rate_limit_per_ip_per_minute),
        identifier_for_request=peer_identifier,
        middleware_class=PeerRateLimitMiddleware,
    )


def rate_limit_config(settings: Settings) -> RateLimitConfig:
    """Per caller, after authentication; public routes are covered by the per-address limit only."""
    return RateLimitConfig(
        rate_limit=("minute", settings.rate_limit_per_minute),
        identifier_for_request=caller_identifier,
        exclude_opt_key="public",
    )
