"""What the API shows the outside world, composed from the domains' facts: the docs pages and the OpenAPI
document, the edge (trusted proxies, security headers) and how the server is run."""

from __future__ import annotations

from typing import Any

import uvicorn
from litestar import Litestar, Router
from litestar.config.app import AppConfig
from litestar.openapi.plugins import JsonRenderPlugin, OpenAPIRenderPlugin, SwaggerRenderPlugin
from litestar.plugins import InitPluginProtocol
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path

from rcm.config import Settings
from rcm.idempotency.service import HEADER as IDEMPOTENCY_HEADER
from rcm.idempotency.service import REPLAYED_HEADER
from rcm.identity.middleware import PUBLIC_OPT_KEY
from rcm.identity.scopes import ALL_SCOPES
from rcm.kit.edge import forwarded_middleware_factory, security_headers_hook
from rcm.kit.openapi import OpenAPIPolicy, finish_openapi

DOCS_PATH = "/docs"
OPENAPI_JSON = f"{DOCS_PATH}/openapi.json"
_DOCS_ASSETS = f"{DOCS_PATH}/assets"


def docs(settings: Settings) -> tuple[list[OpenAPIRenderPlugin], list[Router]]:
    """Swagger UI at /docs from the assets of the installed ``swagger-ui-bundle-v2`` package (Apache-2.0,
    licence in its dist-info), never a CDN: the pages work offline and load nothing from third parties.
    With RCM_API_DOCS=false only the JSON document is served (at /docs/openapi.json, and /docs itself)."""
    if not settings.api_docs:
        return [JsonRenderPlugin(path="/openapi.json")], []
    swagger = SwaggerRenderPlugin(
        path="/",
        js_url=f"{_DOCS_ASSETS}/swagger-ui-bundle.js",
        css_url=f"{_DOCS_ASSETS}/swagger-ui.css",
        standalone_preset_js_url=f"{_DOCS_ASSETS}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{_DOCS_ASSETS}/favicon-32x32.png'>",
    )
    assets = create_static_files_router(
        path=_DOCS_ASSETS,
        directories=[str(swagger_ui_path)],
        include_in_schema=False,
        opt={PUBLIC_OPT_KEY: True},
        cache_control=None,
    )
    return [swagger], [assets]


# The one security scheme of the API: Bearer access tokens from /oauth/token (client credentials for
# practice systems, jwt-bearer for people). The token endpoint itself authenticates clients with HTTP Basic
# or a client assertion, documented on the operation.
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "oauth2": {
        "type": "oauth2",
        "description": "Access tokens from the token endpoint, sent as `Authorization: Bearer <token>`.",
        "flows": {
            "clientCredentials": {
                "tokenUrl": "/oauth/token",
                "scopes": {scope: scope for scope in sorted(ALL_SCOPES)},
            }
        },
    },
    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
}


class EdgePlugin(InitPluginProtocol):
    """Listed after the identity plugin, so its forwarded-address middleware is the outermost of all:
    the per-address rate limit, the audit trail and everything else see the trusted client address."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.middleware.insert(0, forwarded_middleware_factory(self.settings.trusted_proxies))
        app_config.before_send.append(security_headers_hook(DOCS_PATH))
        return app_config


def finish_document(app: Litestar) -> None:
    """Finish the app's OpenAPI document from its route table (``kit/openapi.py``)."""
    finish_openapi(
        app,
        OpenAPIPolicy(
            public_opt_key=PUBLIC_OPT_KEY,
            required_headers=frozenset({IDEMPOTENCY_HEADER}),
            replay_header=REPLAYED_HEADER,
            security_schemes=SECURITY_SCHEMES,
            security=[{"oauth2": []}, {"bearer": []}],
            scoped_scheme="oauth2",
        ),
    )


def server_config(app: Litestar, *, host: str, port: int, **options: Any) -> uvicorn.Config:
    """How the API is served (``rcm serve``, ``rcm dev`` and the live-server tests alike)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        # No uvicorn access log: its lines carry query strings; requests are traced and audited instead.
        access_log=False,
        log_config=None,
        # No "server: uvicorn" banner on any response.
        server_header=False,
        # uvicorn would believe X-Forwarded-For from 127.0.0.1 by default; the app's own trusted-proxy
        # setting (RCM_TRUSTED_PROXIES, kit/edge.py) is the only one that decides.
        proxy_headers=False,
        forwarded_allow_ips="",
        **options,
    )
