"""Development-only fixtures: deterministic API clients for the demo practices, so README curl works.

The secrets are derived from the practice slug and are PUBLIC KNOWLEDGE. Refused outside dev/test.
"""

from __future__ import annotations

import hashlib

from sqlalchemy.ext.asyncio import AsyncSession

from rcm.config import Settings
from rcm.identity.clients import create_client, lookup_client_for_token_endpoint
from rcm.kit.tenant import TenantId


def demo_client_credentials(slug: str) -> tuple[str, str]:
    digest = hashlib.sha256(f"rcm-demo-client:{slug}".encode()).hexdigest()[:24]
    return f"demo-{slug}", f"rcm_s_DEV_ONLY_{digest}"


async def ensure_demo_client(
    session: AsyncSession, settings: Settings, tenant_id: TenantId, slug: str
) -> tuple[str, str]:
    """Create (once) the demo API client of a demo practice; returns (client_id, secret)."""
    if settings.env == "prod":
        raise RuntimeError("demo API clients with well-known secrets are never created in production")
    client_id, secret = demo_client_credentials(slug)
    if await lookup_client_for_token_endpoint(session, client_id) is None:
        await create_client(
            session, tenant_id, name=f"Demo EHR of {slug} (DEMO)", client_id=client_id, secret=secret
        )
    return client_id, secret
