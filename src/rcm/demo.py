"""The demo billing company seeded by `make run`: practices from tenants/demo/, people, synthetic data.

Everything it creates is invented and labelled DEMO.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import NamedTuple

import yaml
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit.events import RequestInfo
from rcm.config import Settings, app_database_url
from rcm.crypto.keyring import KeyStore
from rcm.crypto.provider import key_provider
from rcm.encounters.repository import EncounterRepository
from rcm.encounters.schemas import (
    AttendingProvider,
    ChargeLineIn,
    DiagnosisIn,
    EncounterCreate,
    Institutional,
)
from rcm.encounters.service import create_encounter
from rcm.identity.dev import ensure_demo_client
from rcm.identity.oidc import DEV_ISSUER
from rcm.identity.principal import Principal, PrincipalKind, Role
from rcm.kit.control import open_control_sessions
from rcm.kit.db import create_engine, platform_transaction, session_factory, tenant_transaction
from rcm.kit.package_data import data_path
from rcm.kit.tenant import TenantContext, TenantId
from rcm.patients.schemas import Address, CoverageCreate, PatientCreate
from rcm.providers.schemas import ProviderCreate
from rcm.tenancy.manifest import load_manifest
from rcm.tenancy.models import AppUser, Tenant
from rcm.tenancy.repository import person_by_email, tenant_by_slug, tenants_by_slugs
from rcm.tenancy.scope import TenantScope
from rcm.tenancy.service import apply_manifest
from rcm.tenancy.vocabulary import ClaimType


async def seed_demo(settings: Settings, demo_dir: Path | None = None) -> str:
    demo_dir = demo_dir or data_path("tenants", "demo")
    people = yaml.safe_load((demo_dir / "people.yaml").read_text())
    manifests = [load_manifest(p) for p in sorted(demo_dir.glob("*.yaml")) if p.name != "people.yaml"]
    # The payer directory first: the practices' manifests enroll them with its payers.
    directory = await _seed_payers(settings)
    engine = create_engine(app_database_url(settings), pool_size=1, application_name="rcm-demo")
    sessions = session_factory(engine)
    try:
        # Practices, people, assignments and API clients are the control plane; the clinical data below is
        # written as the app role, like any practice's.
        async with (
            open_control_sessions(settings, application_name="rcm-demo") as control,
            platform_transaction(control) as session,
        ):
            for manifest in manifests:
                await apply_manifest(session, manifest.model_copy(update={"staff": ()}))
            for person in people:
                if await person_by_email(session, person["email"]) is None:
                    tenant_id = None
                    if "tenant" in person:
                        home = await tenant_by_slug(session, person["tenant"])
                        if home is None:
                            raise ValueError(f"demo person of an unknown practice: {person['tenant']}")
                        tenant_id = home.id
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
            demo_slugs = [m.slug for m in manifests]
            tenants = await tenants_by_slugs(session, demo_slugs)
        # DEV ONLY: well-known credentials of the demo practices' API clients, for the README's curl examples.
        clients_file = settings.data_dir / "demo-clients.json"
        clients_file.parent.mkdir(parents=True, exist_ok=True)
        clients_file.write_text(json.dumps(clients, indent=2) + "\n")
        # Code sets (global, loaded as the operator): ICD-10-CM, HCPCS, POS, RARC, the tiny demo CPT file.
        code_sets = await _seed_code_sets(settings)
        keystore = KeyStore(key_provider(settings))
        encounters = 0
        for tenant in tenants:
            encounters += await _seed_clinical(sessions, keystore, tenant)
        from rcm.demo_cycle import run_cycle

        cycle = await run_cycle(settings, sessions, keystore, tenants)
        slugs = ", ".join(t.slug for t in tenants)
        return (
            f"demo seeded: {len(tenants)} practices ({slugs}), {len(people)} people, "
            f"{encounters} new synthetic encounters\n"
            f"code sets: {code_sets}\n"
            f"revenue cycle on the sandbox payer: {cycle}\n"
            f"payer directory: {directory}\n"
            f"demo API clients (DEV ONLY secrets) in {clients_file}"
        )
    finally:
        await engine.dispose()


async def _seed_payers(settings: Settings) -> str:
    from rcm.payers.service import load_directory

    if settings.database_url is None:
        return "not loaded (no administrative URL: run `rcm payers load` as the operator)"
    change = await load_directory(settings.database_url.get_secret_value())
    return f"+{change.added} ~{change.changed} ={change.unchanged}"


async def _seed_code_sets(settings: Settings) -> str:
    from rcm.codes.loading import load_demo_code_sets

    if settings.database_url is None:
        return "not loaded (no administrative URL: run `rcm codes load` as the operator)"
    reports = await load_demo_code_sets(settings.database_url.get_secret_value())
    fresh = [r for r in reports if not r.already_loaded]
    if not fresh:
        return f"{len(reports)} releases already loaded"
    return "; ".join(r.line() for r in fresh)


SEEDER = Principal(
    kind=PrincipalKind.USER,
    subject="system:demo-seeder",
    roles=frozenset({Role.ADMIN}),
    scopes=frozenset(),
    token_id="demo-seed",  # noqa: S106 - an audit correlation id, not a credential
)


def external_id(tenant: Tenant, index: int) -> str:
    """The practice system's id of the demo encounter ``index``."""
    return f"DEMO-{tenant.slug[:8].upper()}-{index + 1:03d}"


GIVEN = ["Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot", "Golf", "Hotel"]
CODES = [("99213", 12500, ["E11.9", "I10"]), ("99214", 18500, ["J45.909"]), ("99203", 15000, ["M54.50"])]
# An institutional (hospital outpatient) practice's visits: revenue code, HCPCS code and charge per line
# (HCPCS Level II, public: the demo ships no CPT beyond its few invented descriptions).
OUTPATIENT = [
    ([("0510", "G0463", 18000), ("0636", "J1885", 2500), ("0258", "J7030", 6000)], ["R10.9"]),
    ([("0762", "G0378", 45000), ("0270", "A4550", 3500)], ["R07.9"]),
    ([("0510", "G0463", 18000), ("0636", "J2405", 3000)], ["E11.9", "I10"]),
]


class _Billing(NamedTuple):
    place_of_service: str
    diagnoses: list[DiagnosisIn]
    charges: list[ChargeLineIn]
    institutional: Institutional | None = None


def _billing(tenant: Tenant, index: int) -> _Billing:
    """The demo encounter's diagnoses, lines and, for an institutional practice, its 837I facts."""
    if tenant.manifest.claim_type is not ClaimType.INSTITUTIONAL:
        code, cents, diagnoses = CODES[index % len(CODES)]
        pointers = list(range(1, len(diagnoses) + 1))
        return _Billing(
            "11",
            [DiagnosisIn(code=c) for c in diagnoses],
            [ChargeLineIn(procedure_code=code, charge_cents=cents, diagnosis_pointers=pointers)],
        )
    lines, diagnoses = OUTPATIENT[index % len(OUTPATIENT)]
    return _Billing(
        "22",  # on-campus outpatient hospital
        [DiagnosisIn(code=c) for c in diagnoses],
        [
            ChargeLineIn(procedure_code=code, charge_cents=cents, revenue_code=revenue)
            for revenue, code, cents in lines
        ],
        Institutional(
            type_of_bill="0131",  # hospital outpatient, admit through discharge
            patient_status="01",  # discharged home
            attending_provider=AttendingProvider(npi="1910000003", family_name="Attending (DEMO)"),
        ),
    )


async def _seed_clinical(
    sessions: async_sessionmaker[AsyncSession], keystore: KeyStore, tenant: Tenant
) -> int:
    """Synthetic patients and encounters, created through the same service code as the API (idempotent)."""
    payers = [p.payer_id for p in tenant.manifest.payers]
    context = TenantContext.single(TenantId(tenant.id))
    created = 0
    async with tenant_transaction(sessions, context) as session:
        scope = TenantScope(
            session=session,
            context=context,
            principal=SEEDER,
            keyring=await keystore.keyring(session, context.tenant_id),
            request=RequestInfo(request_id="demo-seed", trace_id=""),
            manifest=tenant.manifest,
        )
        repo = scope.repo(EncounterRepository)
        for index, given in enumerate(GIVEN):
            if await repo.by_external_id(external_id(tenant, index)) is not None:
                continue
            billing = _billing(tenant, index)
            data = EncounterCreate(
                external_id=external_id(tenant, index),
                service_date=date.today() - timedelta(days=3 + index),
                patient=PatientCreate(
                    mrn=f"DEMO-MRN-{index + 1:04d}",
                    given_name=given,
                    family_name="Demopatient",
                    birth_date=date(1950 + index * 7, 1 + index, 10 + index),
                    sex="female" if index % 2 else "male",
                    address=Address(
                        line1=f"{100 + index} Demo Street",
                        city="Springfield",
                        state="IL",
                        postal_code="62701",
                    ),
                ),
                coverage=(
                    CoverageCreate(payer_id=payers[index % len(payers)], member_id=f"DEMO{index + 1:06d}")
                    if payers
                    else None
                ),
                rendering_provider=ProviderCreate(npi="1910000003", name="Dr Demo Renderer (DEMO)"),
                documentation=f"DEMO NOTE {index + 1}: synthetic visit, invented for the demo.",
                place_of_service=billing.place_of_service,
                diagnoses=billing.diagnoses,
                charges=billing.charges,
                institutional=billing.institutional,
            )
            await create_encounter(scope, data, tenant.manifest)
            created += 1
    return created
