"""Secondary and tertiary claims: the primary's 835 applied builds the secondary claim (same lines, the
secondary coverage's payer, the primary's adjudication kept), which renders as an 837P with loops 2320,
2330A, 2330B and 2430 that pyx12 passes with zero errors; applied again it builds nothing more; a crossover
(CLP02 19) builds nothing and says so on the primary; the secondary's 835 builds the tertiary."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from rcm.blobs.store import BlobStore
from rcm.claims.acknowledgments import apply_file
from rcm.claims.applying import Applying, Outcome
from rcm.claims.batches import build_batches
from rcm.claims.rendering import render_batch
from rcm.claims.repository import ClaimRepository
from rcm.claims.schemas import ReplaceClaim, VoidClaim
from rcm.claims.secondary import after_adjudication
from rcm.claims.service import replace as replace_claim
from rcm.claims.service import void as void_claim
from rcm.claims.states import Cause, ClaimState
from rcm.interchanges import service as files
from rcm.interchanges.models import Direction
from rcm.kit.errors import Conflict
from rcm.kit.secrets import SecretResolver
from rcm.tenancy.models import Tenant
from rcm.x12.claims837_read import read_batch
from rcm.x12.remittance_model import Adjustment, Claim, Person, Remittance, ServiceLine
from tests.claims.conftest import DEMO_CODED, Claims, practice_scope, rows
from tests.claims.test_institutional import institutional_payload
from tests.encounters.test_parties import SUBSCRIBER, dependent_payload
from tests.reporting.scenario import forecast_rollups_rebuilt_alike
from tests.support import Api, encounter_payload
from tests.x12 import remittances
from tests.x12.pyx12check import pyx12_errors

S = ClaimState
CHARGES: dict[str, Any] = {
    "charges": [
        {"procedure_code": "99214", "charge_cents": 18500, "units": 1, "diagnosis_pointers": [1, 2]},
        {"procedure_code": "36415", "charge_cents": 1500, "units": 1, "diagnosis_pointers": [1]},
        {"procedure_code": "81002", "charge_cents": 2000, "units": 1, "diagnosis_pointers": [2]},
    ]
}
CO45 = Adjustment(group="CO", reason="45", amount=3500)
PR2 = Adjustment(group="PR", reason="2", amount=3000)
CO97 = Adjustment(group="CO", reason="97", amount=1500)
PR1 = Adjustment(group="PR", reason="1", amount=2000)


def _line(number: int, code: str, charge: int, paid: int, *adjustments: Adjustment) -> ServiceLine:
    return ServiceLine(
        qualifier="HC",
        code=code,
        charge=charge,
        paid=paid,
        units="1",
        adjustments=adjustments,
        control_number=str(number),  # REF*6R: our 837 sends the line number
    )


def _clp(pcn: str, status: str, lines: tuple[ServiceLine, ...], icn: str) -> Claim:
    patient = sum(a.amount for line in lines for a in line.adjustments if a.group == "PR")
    return Claim(
        patient_control_number=pcn,
        status=status,
        charge=sum(line.charge for line in lines),
        paid=sum(line.paid for line in lines),
        patient_responsibility=patient or None,
        filing_indicator="MB",
        payer_claim_control_number=icn,
        patient=Person(last="DOE"),
        lines=lines,
    )


def _primary_835(pcn: str, status: str = "1") -> Claim:
    """99214 allowed 150.00 of 185.00, paid 120.00, 30.00 coinsurance; 36415 denied (bundled); 81002
    to the deductible."""
    return _clp(
        pcn,
        status,
        (
            _line(1, "99214", 18500, 12000, CO45, PR2),
            _line(2, "36415", 1500, 0, CO97),
            _line(3, "81002", 2000, 0, PR1),
        ),
        "MCR-ICN-1",
    )


class Cob:
    def __init__(self, claims: Claims, tenant: Tenant, api: Api) -> None:
        self.claims, self.tenant, self.api = claims, tenant, api
        self.store = BlobStore.from_settings(claims.settings)

    def scope(self) -> Any:
        return practice_scope(self.claims.sessions, self.claims.settings, self.tenant)

    async def primary(self, **payload: Any) -> tuple[uuid.UUID, str, str]:
        """A primary claim adjudication can reach (submitted), its PCN, and its patient id."""
        encounter = await self.claims.encounter(self.api, **payload)
        claim_id = await self.claims.build(self.tenant, encounter["id"])
        await self.claims.walk(self.tenant, claim_id, S.SUBMITTED)
        async with self.scope() as scope:
            claim = await scope.repo(ClaimRepository).get_or_404(claim_id)
        return claim_id, claim.patient_control_number, encounter["patient_id"]

    async def cover(self, patient_id: str, payer_id: str, priority: str, **extra: Any) -> None:
        body = {"payer_id": payer_id, "member_id": f"{priority[:3].upper()}{uuid.uuid4().hex[:8]}", **extra}
        created = await self.api.post(f"/patients/{patient_id}/coverages", {**body, "priority": priority})
        assert created.status_code == 201, created.text

    async def apply(self, *clps: Claim, control: int = 1) -> Outcome:
        content = remittances.write(
            Remittance(header=remittances.header(sum(c.paid for c in clps)), claims=clps),
            control_number=control,
        ).encode()
        async with self.scope() as scope:
            row, _ = await files.keep(scope, self.store, content, direction=Direction.INBOUND)
            return await apply_file(scope, self.store, row.id)

    async def render(self, payer_id: str) -> str:
        async with self.scope() as scope:
            batches = {b.payer_id: b for b in await build_batches(scope)}
            row = await render_batch(scope, self.store, batches[payer_id].id, secrets=SecretResolver())
            return (await files.read(scope, self.store, row)).decode()


@pytest.fixture
def cob(billing_intake: Api, billing_practice: Tenant, claims: Claims) -> Cob:
    return Cob(claims, billing_practice, billing_intake)


async def _following(owner_engine: AsyncEngine, claim_id: uuid.UUID) -> list[Any]:
    return await rows(
        owner_engine,
        "SELECT id, payer_id, responsibility, state, total_charge_cents, patient_control_number"
        " FROM rcm.claim WHERE primary_claim_id = :c",
        c=claim_id,
    )


async def test_the_primarys_835_builds_the_secondary_claim_which_renders_with_the_primarys_adjudication(
    cob: Cob, owner_engine: AsyncEngine
) -> None:
    primary_id, pcn, patient_id = await cob.primary(**CHARGES)
    await cob.cover(patient_id, "DEMO-BCX", "secondary", group_number="BLUE-9")

    outcome = await cob.apply(_primary_835(pcn))
    assert (outcome.partially_paid, outcome.next_payer_claims) == (1, 1)
    [secondary] = await _following(owner_engine, primary_id)
    assert (secondary.payer_id, secondary.responsibility, secondary.state) == (
        "DEMO-BCX",
        "secondary",
        "ready",
    )
    assert secondary.total_charge_cents == 22000  # billed what the primary was
    read = (await cob.api.get(f"/claims/{secondary.id}")).json()
    assert read["primary_claim_id"] == str(primary_id)
    assert read["events"][0]["reason"] == f"secondary claim after the 835 of {pcn} (CLP02 1)"
    kept = await rows(
        owner_engine,
        "SELECT paid_cents, patient_responsibility_cents, claim_status, jsonb_array_length(lines) AS n"
        " FROM rcm.claim_adjudication WHERE claim_id = :c",
        c=primary_id,
    )
    assert [(k.paid_cents, k.patient_responsibility_cents, k.claim_status, k.n) for k in kept] == [
        (12000, 5000, "1", 3)
    ]

    # The same remittance again, in another interchange (a payer resends), and the claim handed over again:
    # nothing more is built.
    again = await cob.apply(_primary_835(pcn), control=2)
    assert (again.partially_paid, again.next_payer_claims) == (0, 0)
    async with cob.scope() as scope:
        work = Applying(scope, uuid.UUID(int=0), Cause.REMITTANCE)
        claim = await scope.repo(ClaimRepository).get_or_404(primary_id)
        await after_adjudication(work, [(claim, _primary_835(pcn))], adjudicated_on=remittances.WHEN.date())
        assert work.counts == {}
    assert len(await _following(owner_engine, primary_id)) == 1

    content = await cob.render("DEMO-BCX")
    assert pyx12_errors(content) == []
    segments = content.split("~")
    assert "SBR*S*18*BLUE-9******BL" in segments  # this claim's payer is the secondary
    assert "SBR*P*18*******MB" in segments  # 2320: the primary payer's loop, its filing indicator
    assert "AMT*D*120" in segments
    assert "AMT*EAF*50" in segments
    assert "NM1*PR*2*Demo Medicare*****PI*DEMO-MCR" in segments  # 2330B
    assert "REF*F8*MCR-ICN-1" in segments
    assert "SVD*DEMO-MCR*120*HC:99214**1" in segments
    assert "CAS*CO*45*35" in segments
    assert "CAS*PR*2*30" in segments
    assert "SVD*DEMO-MCR*0*HC:36415**1" in segments  # the line the primary denied
    assert "CAS*CO*97*15" in segments
    assert segments.count("DTP*573*D8*20261201") == 4  # 2330B and each 2430: the remittance date

    [claim] = [
        c for p in read_batch(content).billing_providers for loop in p.subscribers for c in loop.claims
    ]
    assert claim.patient_control_number == secondary.patient_control_number
    [other] = claim.other_subscribers
    assert (other.payer.payer_id, other.responsibility, other.paid) == ("DEMO-MCR", "P", 12000)
    assert other.remaining_patient_liability == 5000
    assert [[(a.paid, a.adjustments) for a in line.adjudications] for line in claim.lines] == [
        [(12000, (CO45, PR2))],
        [(0, (CO97,))],
        [(0, (PR1,))],
    ]


async def test_dependent_patient_and_the_secondarys_835_builds_the_tertiary(
    cob: Cob, owner_engine: AsyncEngine
) -> None:
    primary_id, pcn, patient_id = await cob.primary(**dependent_payload(**CHARGES))
    await cob.cover(patient_id, "DEMO-BCX", "secondary", relationship="child", subscriber=SUBSCRIBER)
    await cob.cover(patient_id, "DEMO-MCR", "tertiary")
    await cob.apply(_primary_835(pcn))
    [secondary] = await _following(owner_engine, primary_id)

    content = await cob.render("DEMO-BCX")
    assert pyx12_errors(content) == []
    assert any(s.startswith("SBR*P*19*") for s in content.split("~"))  # the dependent's primary insured

    secondary_id = secondary.id
    await cob.claims.walk(cob.tenant, secondary_id, S.SUBMITTED)
    # The secondary pays 30.00 of the coinsurance and leaves the deductible.
    paid = _clp(
        secondary.patient_control_number,
        "2",
        (
            _line(1, "99214", 18500, 3000, Adjustment(group="OA", reason="23", amount=15500)),
            _line(2, "36415", 1500, 0, Adjustment(group="OA", reason="23", amount=1500)),
            _line(3, "81002", 2000, 0, PR1),
        ),
        "BCX-ICN-1",
    )
    await cob.apply(paid, control=3)
    [tertiary] = await _following(owner_engine, secondary_id)
    assert (tertiary.payer_id, tertiary.responsibility, tertiary.state) == ("DEMO-MCR", "tertiary", "ready")

    content = await cob.render("DEMO-MCR")
    assert pyx12_errors(content) == []
    segments = content.split("~")
    assert any(s.startswith("SBR*T*18*") for s in segments)
    assert [s[:6] for s in segments if s.startswith(("SBR*P", "SBR*S"))] == ["SBR*P*", "SBR*S*"]
    assert sum(s.startswith("SVD*") for s in segments) == 6  # each line, each payer before


async def test_a_crossover_builds_no_secondary_and_says_so_on_the_primary(
    cob: Cob, owner_engine: AsyncEngine
) -> None:
    primary_id, pcn, patient_id = await cob.primary(**CHARGES)
    await cob.cover(patient_id, "DEMO-BCX", "secondary")
    outcome = await cob.apply(_primary_835(pcn, status="19"))
    assert (outcome.partially_paid, outcome.crossovers, outcome.next_payer_claims) == (1, 1, 0)
    assert await _following(owner_engine, primary_id) == []
    events = await rows(
        owner_engine,
        "SELECT from_state, to_state, reason FROM rcm.claim_event WHERE claim_id = :c ORDER BY created_at",
        c=primary_id,
    )
    assert events[-1].reason == (
        "835 CLP02 19: processed and forwarded by the payer to the next payer (crossover)"
    )
    assert events[-1].from_state == events[-1].to_state == "partially_paid"


async def test_no_secondary_without_a_balance_or_a_secondary_coverage(
    cob: Cob, owner_engine: AsyncEngine
) -> None:
    paid_in_full, pcn_full, patient_id = await cob.primary(**CHARGES)
    await cob.cover(patient_id, "DEMO-BCX", "secondary")
    alone, pcn_alone, _ = await cob.primary(**encounter_payload(**CHARGES))
    full = _clp(
        pcn_full,
        "1",
        (_line(1, "99214", 18500, 18500), _line(2, "36415", 1500, 1500), _line(3, "81002", 2000, 2000)),
        "ICN-FULL",
    )
    await cob.apply(full, _primary_835(pcn_alone))
    assert await _following(owner_engine, paid_in_full) == []  # nothing left to the patient
    assert await _following(owner_engine, alone) == []  # no secondary coverage


async def test_an_institutional_secondary_renders_as_an_837i_with_the_primarys_adjudication(
    institutional_api: Api, institutional_practice: Tenant, claims: Claims, owner_engine: AsyncEngine
) -> None:
    cob = Cob(claims, institutional_practice, institutional_api)
    primary_id, pcn, patient_id = await cob.primary(**institutional_payload())
    await cob.cover(patient_id, "DEMO-BCX", "secondary")
    outpatient = ServiceLine(
        qualifier="HC",
        code="99213",
        charge=12500,
        paid=9000,
        revenue_code="0510",
        units="1",
        adjustments=(Adjustment(group="CO", reason="45", amount=1500), PR1),
        control_number="1",
    )
    await cob.apply(_clp(pcn, "1", (outpatient,), "MCR-ICN-I"))
    [secondary] = await _following(owner_engine, primary_id)
    content = await cob.render("DEMO-BCX")
    assert pyx12_errors(content) == []
    segments = content.split("~")
    assert "ST*837*0001*005010X223A2" in segments
    assert "AMT*D*90" in segments
    assert "SVD*DEMO-MCR*90*HC:99213*0510*1" in segments
    [claim] = [
        c for p in read_batch(content).billing_providers for loop in p.subscribers for c in loop.claims
    ]
    assert claim.patient_control_number == secondary.patient_control_number
    assert [a.paid for line in claim.lines for a in line.adjudications] == [9000]


# --- the ledger: the patient's share the secondary bills moves off the patient, and back on a void

PR2_30 = Adjustment(group="PR", reason="2", amount=3000)
PR1_10 = Adjustment(group="PR", reason="1", amount=1000)


def _primary_leaving_40(pcn: str) -> Claim:
    """Paid 130.00, 50.00 written off (CO), 40.00 left to the patient (30.00 coinsurance, 10.00
    deductible)."""
    return _clp(
        pcn,
        "1",
        (
            _line(1, "99214", 18500, 12000, CO45, PR2_30),
            _line(2, "36415", 1500, 0, CO97),
            _line(3, "81002", 2000, 1000, PR1_10),
        ),
        "MCR-ICN-40",
    )


def _prior(amount: int) -> Adjustment:
    return Adjustment(group="OA", reason="23", amount=amount)  # the primary's part, as the secondary says


def _secondary_paying_30(pcn: str) -> Claim:
    """The secondary pays 30.00 of the 40.00 and leaves 10.00 (deductible) to the patient."""
    return _clp(
        pcn,
        "1",
        (
            _line(1, "99214", 18500, 3000, _prior(15500)),
            _line(2, "36415", 1500, 0, _prior(1500)),
            _line(3, "81002", 2000, 0, _prior(1000), PR1_10),
        ),
        "BCX-ICN-30",
    )


async def _ledger(cob: Cob, claim_id: uuid.UUID) -> dict[str, Any]:
    ledger: dict[str, Any] = (await cob.api.get(f"/claims/{claim_id}/ledger")).json()
    receivable = ledger["receivable_accounts"]
    for account, key in (("insurance_receivable", "insurance"), ("patient_receivable", "patient")):
        assert ledger[f"{key}_balance_cents"] == sum(
            e["amount_cents"] for e in ledger["entries"] if e["account"] == account
        )
    assert ledger["balance_cents"] == sum(
        e["amount_cents"] for e in ledger["entries"] if e["account"] in receivable
    )
    return ledger


async def _balances(cob: Cob, claim_id: uuid.UUID) -> tuple[int, int]:
    ledger = await _ledger(cob, claim_id)
    return ledger["insurance_balance_cents"], ledger["patient_balance_cents"]


async def _patient_owes(cob: Cob, patient_id: str) -> int:
    found = await cob.api.get(f"/patients/{patient_id}/balance")
    assert found.status_code == 200, found.text
    cents: int = found.json()["balance_cents"]
    return cents


async def _every_posting_balances(owner_engine: AsyncEngine) -> None:
    off = await rows(
        owner_engine,
        "SELECT posting_id FROM rcm.ledger_entry GROUP BY posting_id HAVING sum(amount_cents) <> 0",
    )
    assert off == []


async def test_the_secondary_takes_over_the_patients_share_and_its_835_leaves_the_patient_its_own(
    cob: Cob, owner_engine: AsyncEngine
) -> None:
    primary_id, pcn, patient_id = await cob.primary(**CHARGES)
    await cob.cover(patient_id, "DEMO-BCX", "secondary")
    assert (await cob.apply(_primary_leaving_40(pcn))).next_payer_claims == 1
    [secondary] = await _following(owner_engine, primary_id)

    # The 40.00 the primary's 835 left to the patient is the secondary payer's now: moved, not copied.
    assert await _balances(cob, primary_id) == (0, 0)
    assert await _balances(cob, secondary.id) == (4000, 0)
    assert await _patient_owes(cob, patient_id) == 0
    moved = [
        e for e in (await _ledger(cob, primary_id))["entries"] if e["source"] == "coordination_of_benefits"
    ]
    assert [(e["account"], e["amount_cents"]) for e in moved] == [("patient_receivable", -4000)]
    [transfer] = (await _ledger(cob, secondary.id))["entries"]
    assert (transfer["source"], transfer["account"], transfer["amount_cents"]) == (
        "coordination_of_benefits",
        "insurance_receivable",
        4000,
    )
    assert transfer["posting_id"] == moved[0]["posting_id"]  # one posting, an entry on each claim

    # The secondary's 835: 30.00 paid, 10.00 to the patient, the rest the primary's (OA 23, not posted again).
    await cob.claims.walk(cob.tenant, secondary.id, S.SUBMITTED)
    await cob.apply(_secondary_paying_30(secondary.patient_control_number), control=2)
    assert await _balances(cob, secondary.id) == (0, 1000)
    assert await _balances(cob, primary_id) == (0, 0)
    assert await _patient_owes(cob, patient_id) == 1000  # the secondary's PR only, nothing counted twice
    await _every_posting_balances(owner_engine)
    [totals] = await rows(
        owner_engine,
        "SELECT sum(e.amount_cents) FILTER (WHERE e.account = 'patient_receivable') AS patient,"
        " sum(e.amount_cents) FILTER (WHERE e.account = 'insurance_receivable') AS insurance,"
        " sum(e.amount_cents) FILTER (WHERE e.account = 'payments') AS paid"
        " FROM rcm.ledger_entry e JOIN rcm.claim c ON c.tenant_id = e.tenant_id AND c.id = e.claim_id"
        " WHERE c.patient_id = :p",
        p=uuid.UUID(patient_id),
    )
    assert (totals.patient, totals.insurance, totals.paid) == (1000, 0, 16000)


@pytest.mark.parametrize("held", [False, True], ids=["in_place", "frequency_8"])
async def test_a_void_of_the_secondary_gives_the_patients_share_back(
    cob: Cob, owner_engine: AsyncEngine, held: bool
) -> None:
    primary_id, pcn, patient_id = await cob.primary(**CHARGES)
    await cob.cover(patient_id, "DEMO-BCX", "secondary")
    await cob.apply(_primary_leaving_40(pcn))
    [secondary] = await _following(owner_engine, primary_id)
    assert await _patient_owes(cob, patient_id) == 0
    if held:  # the payer holds it: voided by a frequency-8 claim, which bills nothing
        await cob.claims.walk(cob.tenant, secondary.id, S.SUBMITTED, S.ACCEPTED, icn="BCX-ICN-V")

    async with cob.scope() as scope:
        void = await void_claim(scope, secondary.id, VoidClaim(reason="the patient had no secondary"))
    assert await _balances(cob, secondary.id) == (0, 0)
    assert await _balances(cob, primary_id) == (0, 4000)
    assert await _patient_owes(cob, patient_id) == 4000
    sources = [e["source"] for e in (await _ledger(cob, secondary.id))["entries"]]
    assert sources == ["coordination_of_benefits", "coordination_reversed"]
    if held:
        assert void.id != secondary.id
        assert (await _ledger(cob, void.id))["entries"] == []
    await _every_posting_balances(owner_engine)


async def test_a_replacement_of_the_secondary_takes_the_patients_share_over_and_bills_no_charges(
    clean_intake: Api, clean_practice: Tenant, claims: Claims, owner_engine: AsyncEngine
) -> None:
    # A practice whose encounters pass the scrubber (a replacement is scrubbed), enrolled with one payer only:
    # the secondary coverage is with it too, so the secondary is ready and can be accepted.
    cob = Cob(claims, clean_practice, clean_intake)
    primary_id, pcn, patient_id = await cob.primary(**DEMO_CODED)
    await cob.cover(patient_id, "DEMO-MCR", "secondary")
    await cob.apply(_clp(pcn, "1", (_line(1, "99213", 12500, 8500, PR2_30, PR1_10),), "MCR-ICN-R"))
    [secondary] = await _following(owner_engine, primary_id)
    await cob.claims.walk(cob.tenant, secondary.id, S.SUBMITTED, S.ACCEPTED, icn="MCR-ICN-R2")
    assert await _balances(cob, secondary.id) == (4000, 0)

    async with cob.scope() as scope:
        replacement = await replace_claim(
            scope, secondary.id, ReplaceClaim(reason="corrected modifier"), secrets=SecretResolver()
        )
    assert await _balances(cob, secondary.id) == (0, 0)
    assert await _balances(cob, replacement.id) == (4000, 0)
    entries = (await _ledger(cob, replacement.id))["entries"]
    assert [e["source"] for e in entries] == ["coordination_of_benefits"]  # no charges billed again
    assert await _balances(cob, primary_id) == (0, 0)
    assert await _patient_owes(cob, patient_id) == 0
    await _every_posting_balances(owner_engine)


async def test_a_reversed_primary_takes_the_share_back_and_flags_the_secondary_for_correction(
    cob: Cob, owner_engine: AsyncEngine
) -> None:
    """The primary's payment reversed (CLP02 22) after the secondary was built, and corrected in the same
    835 (paid in full): the share the secondary took over goes back to the primary (where the reversal
    takes it off), the secondary owes nothing and has a cob_correction item; every posting balances."""
    primary_id, pcn, patient_id = await cob.primary(**CHARGES)
    await cob.cover(patient_id, "DEMO-BCX", "secondary")
    first = _primary_leaving_40(pcn)
    assert (await cob.apply(first)).next_payer_claims == 1
    [secondary] = await _following(owner_engine, primary_id)
    assert await _balances(cob, secondary.id) == (4000, 0)

    corrected = _clp(
        pcn,
        "1",
        (_line(1, "99214", 18500, 18500), _line(2, "36415", 1500, 1500), _line(3, "81002", 2000, 2000)),
        "MCR-ICN-40",
    )
    outcome = await cob.apply(remittances.reversal_of(first), corrected, control=2)
    assert (outcome.posted, outcome.reversals, outcome.cob_corrections, outcome.next_payer_claims) == (
        1,
        1,
        1,
        0,
    )
    assert await _balances(cob, primary_id) == (0, 0)
    assert await _balances(cob, secondary.id) == (0, 0)
    assert await _patient_owes(cob, patient_id) == 0
    sources = [e["source"] for e in (await _ledger(cob, secondary.id))["entries"]]
    assert sources == ["coordination_of_benefits", "coordination_reversed"]
    items = await rows(
        owner_engine,
        "SELECT reason, status FROM rcm.work_item WHERE subject_id = :c AND kind = 'billing'",
        c=secondary.id,
    )
    assert [(i.reason, i.status) for i in items] == [("cob_correction", "open")]
    await _every_posting_balances(owner_engine)
    # The same file again: a duplicate, nothing given back or flagged twice.
    again = await cob.apply(remittances.reversal_of(first), corrected, control=3)
    assert (again.duplicates, again.cob_corrections) == (1, 0)


async def _accepted_secondary(
    cob: Cob, owner_engine: AsyncEngine, payer_id: str
) -> tuple[uuid.UUID, str, str, Any, Claim]:
    """A primary paid 85.00 of 125.00, leaving the patient 40.00 (30.00 coinsurance, 10.00 deductible), and
    its secondary (with ``payer_id``) built and accepted: the primary's id and PCN, the patient's id, the
    secondary's row and the primary's CLP."""
    primary_id, pcn, patient_id = await cob.primary(**DEMO_CODED)
    await cob.cover(patient_id, payer_id, "secondary")
    first = _clp(pcn, "1", (_line(1, "99213", 12500, 8500, PR2_30, PR1_10),), "MCR-ICN-F")
    await cob.apply(first)
    [secondary] = await _following(owner_engine, primary_id)
    await cob.claims.walk(cob.tenant, secondary.id, S.SUBMITTED, S.ACCEPTED, icn="MCR-ICN-F2")
    return primary_id, pcn, patient_id, secondary, first


async def test_the_replacement_of_a_flagged_secondary_takes_over_the_share_the_correction_leaves(
    clean_intake: Api, clean_practice: Tenant, claims: Claims, owner_engine: AsyncEngine
) -> None:
    """The primary's payment reversed and corrected (leaving the patient 20.00 instead of 40.00) after the
    secondary was built and accepted: the secondary, flagged cob_correction, gave its 40.00 back. Replaced
    (frequency 7), the replacement takes over the 20.00 the correction leaves; the primary's patient
    receivable is clear, the item resolved, every posting balances."""
    cob = Cob(claims, clean_practice, clean_intake)
    primary_id, pcn, patient_id, secondary, first = await _accepted_secondary(cob, owner_engine, "DEMO-MCR")
    assert await _balances(cob, secondary.id) == (4000, 0)

    pr2_20 = Adjustment(group="PR", reason="2", amount=2000)
    corrected = _clp(pcn, "1", (_line(1, "99213", 12500, 10500, pr2_20),), "MCR-ICN-F")
    outcome = await cob.apply(remittances.reversal_of(first), corrected, control=2)
    assert (outcome.reversals, outcome.cob_corrections) == (1, 1)
    assert await _balances(cob, secondary.id) == (0, 0)
    assert await _balances(cob, primary_id) == (0, 2000)  # the correction's share, not yet taken over

    async with cob.scope() as scope:
        replacement = await replace_claim(
            scope, secondary.id, ReplaceClaim(reason="primary corrected"), secrets=SecretResolver()
        )
    assert await _balances(cob, replacement.id) == (2000, 0)
    assert [e["source"] for e in (await _ledger(cob, replacement.id))["entries"]] == [
        "coordination_of_benefits"
    ]
    assert await _balances(cob, primary_id) == (0, 0)
    assert await _patient_owes(cob, patient_id) == 0
    items = await rows(
        owner_engine,
        "SELECT reason, status FROM rcm.work_item WHERE subject_id = :c AND kind = 'billing'",
        c=secondary.id,
    )
    assert [(i.reason, i.status) for i in items] == [("cob_correction", "done")]
    await _every_posting_balances(owner_engine)


@pytest.mark.parametrize("apart", [False, True], ids=["one_835", "correction_in_a_later_835"])
async def test_the_replacement_of_a_flagged_secondary_renders_the_primarys_corrected_adjudication(
    cob: Cob, owner_engine: AsyncEngine, apart: bool
) -> None:
    """The primary's payment reversed and corrected (paid 105.00, 20.00 coinsurance, instead of 85.00 with
    30.00 coinsurance and 10.00 deductible) after the secondary was built and accepted: its replacement's 837
    reports the correction in 2320 (AMT*D, AMT*EAF, CAS, REF*F8) and 2430 (SVD, CAS, DTP*573),
    and passes pyx12. The kept adjudications stay append-only: the first, the reversal superseding it, the
    correction, each a version."""
    primary_id, pcn, _, secondary, first = await _accepted_secondary(cob, owner_engine, "DEMO-BCX")

    pr2_20 = Adjustment(group="PR", reason="2", amount=2000)
    corrected = _clp(pcn, "1", (_line(1, "99213", 12500, 10500, pr2_20),), "MCR-ICN-F3")
    if (
        apart
    ):  # the reversal first, beside another claim's payment (BPR02 stays positive); its correction later
        _, other_pcn, _ = await cob.primary(**DEMO_CODED)
        paid_other = _clp(other_pcn, "1", (_line(1, "99213", 12500, 12500),), "MCR-ICN-O")
        outcome = await cob.apply(remittances.reversal_of(first), paid_other, control=2)
        assert (outcome.reversals, outcome.cob_corrections) == (1, 1)
        assert await _kept(owner_engine, primary_id) == [(1, "1", 8500, 4000), (2, "22", -8500, -4000)]
        # No adjudication of the primary stands until the correction comes: the secondary cannot be replaced.
        with pytest.raises(Conflict) as refused:
            async with cob.scope() as scope:
                await replace_claim(
                    scope, secondary.id, ReplaceClaim(reason="too soon"), secrets=SecretResolver()
                )
        assert [e.pointer for e in refused.value.errors] == ["/primary_claim_id"]
        await cob.apply(corrected, control=3)
    else:
        outcome = await cob.apply(remittances.reversal_of(first), corrected, control=2)
        assert (outcome.reversals, outcome.cob_corrections) == (1, 1)
    assert await _kept(owner_engine, primary_id) == [
        (1, "1", 8500, 4000),
        (2, "22", -8500, -4000),
        (3, "1", 10500, 2000),
    ]

    async with cob.scope() as scope:
        await replace_claim(
            scope, secondary.id, ReplaceClaim(reason="primary corrected"), secrets=SecretResolver()
        )
    content = await cob.render("DEMO-BCX")
    assert pyx12_errors(content) == []
    segments = content.split("~")
    assert "CLM" in {s.split("*")[0] for s in segments}
    assert "AMT*D*105" in segments  # the correction's payment, not the reversed 85.00
    assert "AMT*EAF*20" in segments
    assert "REF*F8*MCR-ICN-F3" in segments  # 2330B: the correction's claim control number
    assert "SVD*DEMO-MCR*105*HC:99213**1" in segments
    assert "CAS*PR*2*20" in segments
    assert not [s for s in segments if s.startswith(("CAS*PR*1", "CAS*PR*2*30", "SVD*DEMO-MCR*85"))]
    [claim] = [
        c for p in read_batch(content).billing_providers for loop in p.subscribers for c in loop.claims
    ]
    [other] = claim.other_subscribers
    assert (other.paid, other.remaining_patient_liability) == (10500, 2000)
    assert [[(a.paid, a.adjustments) for a in line.adjudications] for line in claim.lines] == [
        [(10500, (pr2_20,))]
    ]


async def _kept(owner_engine: AsyncEngine, claim_id: uuid.UUID) -> list[tuple[int, str, int, int | None]]:
    """The claim's kept adjudications, oldest version first: (version, CLP02, CLP04, CLP05)."""
    kept = await rows(
        owner_engine,
        "SELECT version, claim_status, paid_cents, patient_responsibility_cents"
        " FROM rcm.claim_adjudication WHERE claim_id = :c ORDER BY version",
        c=claim_id,
    )
    return [(k.version, k.claim_status, k.paid_cents, k.patient_responsibility_cents) for k in kept]


async def test_a_ready_secondary_waits_for_its_primarys_correction_before_it_goes_in_a_batch(
    cob: Cob, owner_engine: AsyncEngine
) -> None:
    """The secondary was built but not yet batched when the primary's payment was reversed: no batch takes
    it while no adjudication of the primary stands (its 2320/2430 would be empty). The correction's 835 frees
    it, and its 837 reports the correction and passes pyx12."""
    primary_id, pcn, patient_id = await cob.primary(**DEMO_CODED)
    await cob.cover(patient_id, "DEMO-BCX", "secondary")
    first = _clp(pcn, "1", (_line(1, "99213", 12500, 8500, PR2_30, PR1_10),), "MCR-ICN-W")
    await cob.apply(first)
    [secondary] = await _following(owner_engine, primary_id)
    assert secondary.state == "ready"
    _, other_pcn, _ = await cob.primary(**DEMO_CODED)
    paid_other = _clp(other_pcn, "1", (_line(1, "99213", 12500, 12500),), "MCR-ICN-WO")
    outcome = await cob.apply(remittances.reversal_of(first), paid_other, control=2)
    assert (outcome.reversals, outcome.cob_corrections) == (1, 1)

    async with cob.scope() as scope:
        assert [b.payer_id for b in await build_batches(scope)] == []
    [waiting] = await _following(owner_engine, primary_id)
    assert waiting.state == "ready"
    assert await _balances(cob, waiting.id) == (0, 0)  # its share went back with the reversal

    pr2_20 = Adjustment(group="PR", reason="2", amount=2000)
    outcome = await cob.apply(
        _clp(pcn, "1", (_line(1, "99213", 12500, 10500, pr2_20),), "MCR-ICN-W3"), control=3
    )
    # Never sent, it has nothing to replace: it takes over the share the correction leaves the patient, and
    # the item the reversal opened on it (replace or void) is cancelled: done without a biller. Audited.
    assert outcome.cob_taken_over == 1
    assert await _balances(cob, waiting.id) == (2000, 0)
    assert await _balances(cob, primary_id) == (0, 0)
    items = await rows(
        owner_engine,
        "SELECT reason, status FROM rcm.work_item WHERE subject_id = :c AND kind = 'billing'",
        c=waiting.id,
    )
    assert [(i.reason, i.status) for i in items] == [("cob_correction", "cancelled")]
    [audited] = await rows(
        owner_engine,
        "SELECT resource_ids, detail FROM rcm.audit_event WHERE event_type = 'claim.cob_taken_over'",
    )
    assert audited.resource_ids == [waiting.id]
    assert (audited.detail["claims"], audited.detail["taken_cents"]) == (1, 2000)
    await _every_posting_balances(owner_engine)
    content = await cob.render("DEMO-BCX")
    assert pyx12_errors(content) == []
    segments = content.split("~")
    assert "AMT*D*105" in segments
    assert "REF*F8*MCR-ICN-W3" in segments
    # The cash forecast's rollups followed the submissions, the 835s, the reversal and its correction.
    claims, payments = await forecast_rollups_rebuilt_alike(owner_engine, str(cob.tenant.id))
    assert sum(row[-2] for row in claims) == 2  # the two primaries: the secondary's batch is not sent
    assert payments
