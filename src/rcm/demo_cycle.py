"""The demo's revenue cycle, so every route and report has realistic data on the first `make run`: every
second demo encounter of each practice (those whose codes came with the encounter) is scrubbed, becomes a
claim, goes out in a submission batch as a real 837P to the sandbox payer, and the sandbox's answers (999,
277CA, 835, as its rules decide) are fetched and applied: the 835's payments end on the ledger, so every
demo claim the payer paid has a balance to read (``GET .../claims/{id}/ledger``). The other encounters wait
in the coding queue for the README's walk-through.

It runs the same code as the API and the worker (scrub, ``build_batches``, ``submit_batch``,
``fetch_practice``), as the demo seeder, and is idempotent: an encounter with a claim is not scrubbed again, a
sent batch is not sent again, a fetched file is kept once. DEV ONLY (the sandbox payer refuses otherwise)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit.events import RequestInfo
from rcm.blobs.store import BlobStore
from rcm.claims.batches import build_batches
from rcm.claims.repository import ClaimRepository
from rcm.claims.responses import Practice, fetch_practice
from rcm.claims.submission import Policy, Submitter, submit_batch
from rcm.config import Settings
from rcm.crypto.keyring import KeyStore
from rcm.demo import GIVEN, SEEDER, external_id
from rcm.encounters.repository import EncounterRepository
from rcm.kit.secrets import SecretResolver
from rcm.kit.tenant import TenantId
from rcm.payers.breaker import breaker_for
from rcm.scrub.service import scrub_encounter
from rcm.tenancy.jobs import job_tenant_scope
from rcm.tenancy.models import Tenant

JOB = "demo.cycle"
# The sandbox answers a submission with a 999 and a 277CA at once and the 835 after a few fetches (its
# rules' delays): the demo asks this many times.
FETCHES = 3


# The sandbox payer's rules for `make run` (DEV ONLY): outcomes by procedure, so the demo always shows a claim
# paid, one partially paid with a patient share and one denied (the sandbox's own defaults go by the random
# last character of the patient control number). Written once; an operator's own rules file is kept.
DEMO_PAYER_RULES = """\
# The demo's sandbox payer (written by `rcm dev` when absent; edit freely, see integrations/sandbox_payer).
claims:
  - when: {charge_at_least: 5000000}
    outcome: reject_999
  - when: {procedure: ["99214"]}
    outcome: deny
    carc: "16"
    rarc: MA130
  - when: {procedure: ["99203", "G0378"]}
    outcome: partial
    patient_reason: "2"
    rarc: N130
  - outcome: pay
"""


def demo_payer_rules(settings: Settings) -> Path:
    """The demo sandbox payer's rules file (``sandbox:claims`` in the data directory), written if absent."""
    path = settings.data_dir / "sandbox-payer" / "claims" / "rules.yaml"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(DEMO_PAYER_RULES)
    return path


async def run_cycle(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    keystore: KeyStore,
    tenants: Sequence[Tenant],
) -> str:
    secrets = SecretResolver(settings.secrets_dir)
    store = BlobStore.from_settings(settings)
    request = RequestInfo(request_id="demo-cycle", trace_id="")
    outcomes: Counter[str] = Counter()
    batches = []
    for tenant in tenants:
        tenant_id = TenantId(tenant.id)
        async with job_tenant_scope(
            sessions, keystore, tenant_id, actor=SEEDER, request=request, job=JOB
        ) as scope:
            encounters, claims = scope.repo(EncounterRepository), scope.repo(ClaimRepository)
            for index in range(0, len(GIVEN), 2):
                encounter = await encounters.by_external_id(external_id(tenant, index))
                if encounter is None or await claims.first_original(encounter.id) is not None:
                    continue
                report = await scrub_encounter(scope, encounter.id, dry_run=False, secrets=secrets)
                outcomes[f"scrub {report.outcome.value}"] += 1
            batches += [(tenant_id, b.id) for b in await build_batches(scope)]
    submitter = Submitter(
        sessions=sessions,
        keystore=keystore,
        store=store,
        breaker=breaker_for(settings),
        secrets=secrets,
        policy=Policy.from_settings(settings),
    )
    for tenant_id, batch_id in batches:
        outcomes[f"batch {(await submit_batch(submitter, tenant_id, batch_id)).value}"] += 1
    for tenant in tenants:
        practice = Practice(
            sessions=sessions, keystore=keystore, tenant_id=TenantId(tenant.id), actor=SEEDER, request=request
        )
        for _ in range(FETCHES):
            fetched = await fetch_practice(practice, store, secrets)
            outcomes["payer files applied"] += sum(1 for o in fetched.outcomes if not o.already)
            # The 835s' payments, adjustments and patient shares, posted to the ledger (rcm.ledger).
            outcomes["payments posted"] += sum(o.posted for o in fetched.outcomes)
            outcomes["cents posted to claims"] += sum(o.posted_cents for o in fetched.outcomes)
            outcomes["fetch errors"] += len(fetched.errors)
    return ", ".join(f"{what}: {n}" for what, n in sorted(outcomes.items()) if n) or "nothing new"
