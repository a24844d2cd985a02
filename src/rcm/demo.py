"""The demo billing company seeded by `make run`: practices from tenants/demo/, people, synthetic data.

Everything it creates is invented and labelled DEMO.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import yaml
from sqlalchemy import select

from rcm.app import app_database_url
from rcm.config import Settings
from rcm.identity.dev import ensure_demo_client
from rcm.identity.oidc import DEV_ISSUER
from rcm.kit.db import create_engine, platform_transaction, session_factory
from rcm.kit.tenant import TenantId
from rcm.tenancy.manifest import TENANTS_DIR, load_manifest
from rcm.tenancy.models import AppUser, Tenant
from rcm.tenancy.service import apply_manifest

DEMO_DIR = TENANTS_DIR / "demo"


async def seed_demo(settings: Settings, demo_dir: Path = DEMO_DIR) -> str:
    people = yaml.safe_load((demo_dir / "people.yaml").read_text())
    manifests = [load_manifest(p) for p in sorted(demo_dir.glob("*.yaml")) if p.name != "people.yaml"]  # noqa: ASYNC240
    engine = create_engine(app_database_url(settings), pool_size=1, application_name="rcm-demo")
    sessions = session_factory(engine)
    try:
        async with platform_transaction(sessions) as session:
            for manifest in manifests:
                await apply_manifest(session, {**manifest, "staff": []})
            for person in people:
                user = (
                    await session.execute(select(AppUser).where(AppUser.email == person["email"]))
                ).scalar_one_or_none()
                if user is None:
                    tenant_id = None
                    if "tenant" in person:
                        tenant = (
                            await session.execute(select(Tenant).where(Tenant.slug == person["tenant"]))
                        ).scalar_one()
                        tenant_id = tenant.id
                    session.add(
                        AppUser(
                            id=uuid.uuid4(),
                            issuer=DEV_ISSUER,
                            subject=person["email"],
                            email=person["email"],
                            display_name=person["name"],
                            roles=person["roles"],
                            home_tenant_id=tenant_id,
                        )
                    )
            await session.flush()
            clients = {}
            for manifest in manifests:
                tenant, _ = await apply_manifest(session, manifest)
                client_id, secret = await ensure_demo_client(
                    session, settings, TenantId(tenant.id), tenant.slug
                )
                clients[tenant.slug] = {"client_id": client_id, "client_secret": secret}
            tenants = (await session.execute(select(Tenant.slug).order_by(Tenant.slug))).scalars().all()
        # DEV ONLY: well-known credentials of the demo practices' API clients, for the README's curl examples.
        clients_file = settings.data_dir / "demo-clients.json"
        clients_file.parent.mkdir(parents=True, exist_ok=True)
        clients_file.write_text(json.dumps(clients, indent=2) + "\n")
        return (
            f"demo seeded: {len(tenants)} practices ({', '.join(tenants)}), {len(people)} people\n"
            f"demo API clients (DEV ONLY secrets) in {clients_file}"
        )
    finally:
        await engine.dispose()
