"""Rate limits, in two layers; a 429 carries Retry-After (``kit/errors.py``, from RateLimit-Reset).

1. Per source address, BEFORE authentication, on every route (public ones, ``/oauth/token`` and the dev
   issuer included): every refused token request and every 401 writes an audit row, so unauthenticated
   traffic must be bounded before it reaches the authentication layer.
2. Per caller, AFTER authentication: each API client (or person) has its own window.

Paths no route serves are answered 404 by the router before any route middleware, so the per-address
limit does not count them; they touch neither the database nor the audit trail, and the edge proxy's
connection limits bound them.

Windows slide (a burst at a window boundary cannot reach twice the limit) and are counted in Redis when
``RCM_REDIS_URL`` is set, so every API replica shares them (one atomic script per hit, ``kit/windows.py``);
otherwise in the process's memory. The address is the ASGI client
address, which ``kit/edge.py`` takes from X-Forwarded-For only when the TCP peer is a trusted proxy
(``RCM_TRUSTED_PROXIES``), so a caller cannot pick its own window by sending the header.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import MutableScopeHeaders
from litestar.exceptions import TooManyRequestsException
from litestar.middleware.rate_limit import DURATION_VALUES, RateLimitConfig, RateLimitMiddleware
from litestar.types import Message, Receive, Scope, Send

from rcm.config import Settings
from rcm.identity.principal import Principal
from rcm.kit.windows import WINDOWS_STATE_KEY, Hit, Windows

__all__ = ["WINDOWS_STATE_KEY", "rate_limit_config"]


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


class WindowRateLimitMiddleware(RateLimitMiddleware):
    """Litestar's limiter (configuration, exclusions, IETF RateLimit-* headers) over our shared windows.

    Litestar's own reads, changes and writes a history under a process-local lock, which is not atomic
    across replicas; here each request is one atomic ``hit`` on the store.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = scope["litestar_app"]
        request: Request[Any, Any, Any] = app.request_class(scope)
        if await self.should_check_request(request=request):
            windows: Windows = app.state[WINDOWS_STATE_KEY]
            window_ms = DURATION_VALUES[self.unit] * 1000
            hit = await windows.hit(self.cache_key_from_request(request), window_ms)
            headers = self.window_headers(hit)
            if hit.count > self.max_requests:
                # Retry-After (from RateLimit-Reset) is when the sliding window next has room.
                wait_ms = max(hit.retry_after_ms(self.max_requests), 1)
                headers[self.config.rate_limit_reset_header_key] = str(-(-wait_ms // 1000))
                raise TooManyRequestsException(headers=headers)
            send = self.add_headers(send, headers)
        await self.app(scope, receive, send)

    def window_headers(self, hit: Hit) -> dict[str, str]:
        config = self.config
        window = DURATION_VALUES[self.unit]
        return {
            config.rate_limit_policy_header_key: f"{self.max_requests};w={window}",
            config.rate_limit_limit_header_key: str(self.max_requests),
            config.rate_limit_remaining_header_key: str(max(0, self.max_requests - hit.count)),
            # Whole seconds, rounded up: a client that waits this long finds a slot (Retry-After on a 429).
            config.rate_limit_reset_header_key: str(max(1, -(-hit.reset_ms // 1000))),
        }

    def add_headers(self, send: Send, headers: dict[str, str]) -> Send:
        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                mutable = MutableScopeHeaders(message)
                for key, value in headers.items():
                    mutable[key] = value
            await send(message)

        return send_wrapper


class PeerRateLimitMiddleware(WindowRateLimitMiddleware):
    """The per-address limiter. Its class name keys its windows apart from the per-caller limiter's."""

    def add_headers(self, send: Send, headers: dict[str, str]) -> Send:
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
        middleware_class=WindowRateLimitMiddleware,
    )
