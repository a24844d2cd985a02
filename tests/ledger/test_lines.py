"""Service lines posted to the claim lines they pay: matched with modifiers reordered or dropped, a bundled
SVC (SVC06 naming the billed code, its charge the sum of several billed lines) shared among its lines by their
charges, a split line (one billed line paid as several SVCs, each naming it in SVC06) gathering its parts;
claim interest (AMT*I, included in CLP04) posted to interest; each entry pointing at its segment's position
within the transaction set. 835s written by our writer, posted to the cent."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.config import Settings
from rcm.ledger.lines import BilledLine, allocate, match_lines
from rcm.tenancy.models import Tenant
from rcm.x12.remittance_model import Adjustment, Claim, Person, ServiceLine
from tests.claims.conftest import Claims, rows
from tests.ledger.support import apply_era, era_file, submitted_claim
from tests.support import Api

DAY = date(2026, 11, 2)


def svc(
    code: str,
    charge: int,
    paid: int,
    *,
    modifiers: tuple[str, ...] = (),
    original: str | None = None,
    control: str | None = None,
    day: date = DAY,
) -> ServiceLine:
    return ServiceLine(
        qualifier="HC",
        code=code,
        modifiers=modifiers,
        charge=charge,
        paid=paid,
        service_start=day,
        service_end=day,
        adjustments=(Adjustment(group="CO", reason="45", amount=charge - paid),) if charge != paid else (),
        control_number=control,
        original_code=original,
    )


BILLED = [
    BilledLine(1, "99213", ("25", "GT"), DAY, 12500),
    BilledLine(2, "93000", (), DAY, 1650),
    BilledLine(3, "36415", (), DAY, 1000),
    BilledLine(4, "85025", (), DAY, 2000),
]


def test_lines_matched_reordered_dropped_bundled_and_split() -> None:
    paid = [
        svc("99213", 12500, 10000, modifiers=("GT", "25")),  # modifiers reordered
        svc("80048", 3000, 2400, original="36415"),  # bundled: 36415 + 85025
        svc("93005", 1000, 800, original="93000"),  # split: 93000 paid in two parts
        svc("93010", 650, 500, original="93000"),
    ]
    assert match_lines(paid, BILLED) == [((1, 1),), ((3, 1000), (4, 2000)), ((2, 1),), ((2, 1),)]
    # A dropped modifier, and an SVC naming nothing billed (claim level).
    dropped = [svc("99213", 12500, 9000, modifiers=("25",)), svc("99999", 100, 0)]
    assert match_lines(dropped, BILLED) == [((1, 1),), ()]
    # REF*6R wins over codes; a split line's parts may all carry it.
    by_control = [svc("93005", 1000, 800, original="93000", control="2"), svc("93010", 650, 500, control="2")]
    assert match_lines(by_control, BILLED) == [((2, 1),), ((2, 1),)]


def test_allocate_to_the_cent() -> None:
    assert allocate(2401, ((3, 1000), (4, 2000))) == [(3, 801), (4, 1600)]
    assert allocate(-2401, ((3, 1000), (4, 2000))) == [(3, -801), (4, -1600)]
    assert allocate(7, ()) == [(None, 7)]
    assert sum(part for _, part in allocate(1001, ((1, 1), (2, 1), (3, 1)))) == 1001


def _pos(data: bytes, prefix: str) -> int:
    """The position within its set (ST is 1) of the first segment starting with ``prefix``."""
    segments = [s.strip() for s in data.decode().split("~")]
    st = next(i for i, s in enumerate(segments) if s.startswith("ST*"))
    return next(i for i, s in enumerate(segments) if s.startswith(prefix)) - st + 1


async def test_bundled_split_reordered_and_interest_post_to_their_lines(
    *,
    claims: Claims,
    intake: Api,
    practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    charges = [
        {
            "procedure_code": "99213",
            "modifiers": ["25", "GT"],
            "charge_cents": 12500,
            "diagnosis_pointers": [1],
        },
        {"procedure_code": "93000", "charge_cents": 1650, "diagnosis_pointers": [1]},
        {"procedure_code": "36415", "charge_cents": 1000, "diagnosis_pointers": [1]},
        {"procedure_code": "85025", "charge_cents": 2000, "diagnosis_pointers": [1]},
    ]
    claim, lines = await submitted_claim(
        claims, intake, practice, charges=charges, service_date=DAY.isoformat()
    )
    assert [(line.line_number, line.procedure_code) for line in lines] == [
        (1, "99213"),
        (2, "93000"),
        (3, "36415"),
        (4, "85025"),
    ]
    paid_lines = (
        svc("99213", 12500, 10000, modifiers=("GT", "25")),
        svc("80048", 3000, 2400, original="36415"),
        svc("93005", 1000, 800, original="93000"),
        svc("93010", 650, 500, original="93000"),
    )
    interest = 123
    remitted = Claim(
        patient_control_number=claim.patient_control_number,
        status="1",
        charge=17150,
        paid=13700 + interest,  # CLP04 includes the interest
        filing_indicator="MB",
        payer_claim_control_number="ICNLINES01",
        patient=Person(last="DOE", first="JANE", identifier_qualifier="MI", identifier="M1"),
        service_start=DAY,
        lines=paid_lines,
        interest=interest,
    )
    data = era_file(remitted, trace="EFT-LINES1")
    outcome = await apply_era(sessions, settings, practice, data)
    assert (outcome.posted, outcome.held, outcome.matched, outcome.posted_cents) == (1, 0, 1, 13823)
    ledger = (await intake.get(f"/claims/{claim.id}/ledger")).json()
    entries = ledger["entries"]
    assert (ledger["insurance_balance_cents"], ledger["patient_balance_cents"]) == (0, 0)
    # Every claim line is settled on its own: charge - payments - adjustments = 0, to the cent.
    per_line: dict[Any, int] = {}
    for e in entries:
        if e["account"] == "insurance_receivable":
            per_line[e["line_number"]] = per_line.get(e["line_number"], 0) + e["amount_cents"]
    assert per_line == {1: 0, 2: 0, 3: 0, 4: 0}
    paid_on = {
        (e["line_number"], -e["amount_cents"])
        for e in entries
        if e["account"] == "insurance_receivable" and e["segment"] == "SVC"
    }
    assert paid_on == {(1, 10000), (3, 800), (4, 1600), (2, 800), (2, 500)}
    # Interest: moved from payments to interest income, never off the receivable.
    earned = [e for e in entries if e["account"] == "interest"]
    assert [(e["amount_cents"], e["segment"], e["segment_index"]) for e in earned] == [
        (-interest, "AMT", _pos(data, "AMT*I"))
    ]
    # Cash reconciles: payments of the set are BPR02.
    cash = await rows(
        owner_engine,
        "SELECT sum(e.amount_cents) AS n FROM rcm.ledger_entry e JOIN rcm.ledger_posting p"
        " ON (p.tenant_id, p.id) = (e.tenant_id, e.posting_id)"
        " WHERE e.tenant_id = :t AND e.account = 'payments' AND p.remittance_id IS NOT NULL",
        t=practice.id,
    )
    assert cash[0].n == 13823
    # Source positions: the first SVC's payment points at that SVC, its CAS at the CAS after it.
    first_svc = _pos(data, "SVC*HC:99213")
    svc_entries = {e["segment_index"] for e in entries if e["segment"] == "SVC" and e["line_number"] == 1}
    cas_entries = {e["segment_index"] for e in entries if e["segment"] == "CAS" and e["line_number"] == 1}
    assert (svc_entries, cas_entries) == ({first_svc}, {first_svc + 2})  # SVC, DTM*472, CAS
    assert all(e["segment_position"] == 1 for e in entries if e["source"] == "remittance_claim")


async def test_a_claim_with_interest_and_no_cas_for_it_is_not_held(
    *,
    claims: Claims,
    intake: Api,
    practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    """CLP03 - (CLP04 - AMT*I) = Σ CAS balances the claim; without AMT*I the same CLP is held."""
    claim, lines = await submitted_claim(claims, intake, practice)
    charge = sum(line.charge_cents for line in lines)
    paid_lines = tuple(
        ServiceLine(
            qualifier="HC",
            code=line.procedure_code,
            charge=line.charge_cents,
            paid=line.charge_cents,
            service_start=line.service_date,
            control_number=str(line.line_number),
        )
        for line in lines
    )

    def clp(interest: int | None) -> Claim:
        return Claim(
            patient_control_number=claim.patient_control_number,
            status="1",
            charge=charge,
            paid=charge + 50,
            filing_indicator="MB",
            payer_claim_control_number="ICNINT01",
            patient=Person(last="DOE", first="JANE"),
            lines=paid_lines,
            interest=interest,
        )

    held = await apply_era(sessions, settings, practice, era_file(clp(None), trace="EFT-INT0"))
    assert (held.posted, held.held) == (0, 1)
    posted = await apply_era(sessions, settings, practice, era_file(clp(50), trace="EFT-INT1"))
    assert (posted.posted, posted.held, posted.posted_cents) == (1, 0, charge + 50)
    ledger = (await intake.get(f"/claims/{claim.id}/ledger")).json()
    assert ledger["balance_cents"] == 0
    assert sum(e["amount_cents"] for e in ledger["entries"] if e["account"] == "interest") == -50
