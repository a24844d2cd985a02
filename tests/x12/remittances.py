"""835 models for tests and the bench: the shapes a payer sends, and random ones for property tests."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from hypothesis import strategies as st

from rcm.x12 import Party
from rcm.x12.remittance_model import (
    Account,
    Address,
    Adjustment,
    Claim,
    Contact,
    Funds,
    Header,
    Payee,
    Payer,
    Person,
    ProviderAdjustment,
    Reference,
    Remittance,
    ServiceLine,
)
from rcm.x12.remittance_writer import remittance_interchange

WHEN = datetime(2026, 12, 1, 9, 30)
DAY = date(2026, 11, 2)
NPI = "1234567893"


def header(total_paid: int, *, method: str = "ACH") -> Header:
    funds = None
    if method == "ACH":
        funds = Funds(
            format="CCP",
            sender=Account(dfi_qualifier="01", dfi="999999992", account_qualifier="DA", account="123456"),
            originator_id="1512345678",
            receiver=Account(dfi_qualifier="01", dfi="999988880", account_qualifier="DA", account="98765"),
        )
    return Header(
        handling="I" if total_paid else "H",
        total_paid=total_paid,
        credit_debit="C",
        payment_method=method if total_paid else "NON",
        funds=funds if total_paid else None,
        payment_date=date(2026, 12, 1),
        trace_number="EFT0001",
        trace_originator="1512345678",
        production_date=date(2026, 11, 30),
        payer=Payer(
            name="SANDBOX HEALTH PLAN",
            identifier_qualifier="XV",
            identifier="8012345678",
            payer_id="99999",
            address=Address(line1="1 PAYER WAY", city="LANSING", state="MI", postal_code="48909"),
            technical_contact=Contact(function="BL", name="EDI SUPPORT", phone="8005551212"),
        ),
        payee=Payee(
            name="MAPLE CLINIC",
            npi=NPI,
            tin="123456789",
            address=Address(line1="2 OAK ST", city="AUSTIN", state="TX", postal_code="78701"),
        ),
    )


def line(
    charge: int, paid: int, adjustments: tuple[Adjustment, ...] = (), *, code: str = "99213", number: int = 1
) -> ServiceLine:
    return ServiceLine(
        qualifier="HC",
        code=code,
        modifiers=("25",) if number == 1 else (),
        charge=charge,
        paid=paid,
        units="1",
        service_start=DAY,
        service_end=DAY,
        adjustments=adjustments,
        control_number=f"L{number}",
        allowed=paid + sum(a.amount for a in adjustments if a.group == "PR") if paid >= 0 else None,
        remarks=("N130",) if adjustments else (),
    )


def claim(number: int, lines: tuple[ServiceLine, ...], *, status: str = "1", icn: str | None = None) -> Claim:
    charge = sum(item.charge for item in lines)
    paid = sum(item.paid for item in lines)
    patient = sum(a.amount for item in lines for a in item.adjustments if a.group == "PR")
    return Claim(
        patient_control_number=f"PCN{number:06d}",
        status=status,
        charge=charge,
        paid=paid,
        patient_responsibility=patient or None,
        filing_indicator="12",
        payer_claim_control_number=icn or f"ICN{number:08d}",
        facility_type="11",
        frequency="1",
        patient=Person(last="DOE", first="JANE", identifier_qualifier="MI", identifier=f"M{number:07d}"),
        rendering=Person(
            entity_type="1", last="SMITH", first="ANN", identifier_qualifier="XX", identifier=NPI
        ),
        remarks=("MA01",) if patient else (),
        references=(Reference("1L", "GRP01"),),
        service_start=DAY,
        service_end=DAY,
        received=DAY + timedelta(days=10),
        lines=lines,
    )


def paid_claim(number: int) -> Claim:
    return claim(number, (line(15000, 15000, number=1),))


def partially_paid_claim(number: int) -> Claim:
    """CO 45 contractual write-off and PR 2 coinsurance on the first line, PR 1 deductible on the second."""
    return claim(
        number,
        (
            line(
                15000,
                9600,
                (
                    Adjustment(group="CO", reason="45", amount=3000),
                    Adjustment(group="PR", reason="2", amount=2400),
                ),
                number=1,
            ),
            line(8000, 0, (Adjustment(group="PR", reason="1", amount=8000),), code="81002", number=2),
        ),
    )


def denied_claim(number: int) -> Claim:
    denied = line(20000, 0, (Adjustment(group="CO", reason="50", amount=20000),), code="97110")
    return claim(number, (denied,), status="4")


def reversal_of(original: Claim) -> Claim:
    """CLP02 22: the earlier payment taken back, every amount negated."""

    def negated(adjustments: tuple[Adjustment, ...]) -> tuple[Adjustment, ...]:
        return tuple(
            Adjustment(group=a.group, reason=a.reason, amount=-a.amount, quantity=a.quantity)
            for a in adjustments
        )

    lines = tuple(
        ServiceLine(
            qualifier=item.qualifier,
            code=item.code,
            modifiers=item.modifiers,
            charge=-item.charge,
            paid=-item.paid,
            units=item.units,
            service_start=item.service_start,
            service_end=item.service_end,
            adjustments=negated(item.adjustments),
            control_number=item.control_number,
        )
        for item in original.lines
    )
    patient = original.patient_responsibility
    return Claim(
        patient_control_number=original.patient_control_number,
        status="22",
        charge=-original.charge,
        paid=-original.paid,
        patient_responsibility=None if patient is None else -patient,
        filing_indicator=original.filing_indicator,
        payer_claim_control_number=original.payer_claim_control_number,
        facility_type=original.facility_type,
        frequency="8",
        patient=original.patient,
        lines=lines,
    )


def remittance(claims: tuple[Claim, ...], adjustments: tuple[ProviderAdjustment, ...] = ()) -> Remittance:
    total = sum(item.paid for item in claims) - sum(item.amount for item in adjustments)
    return Remittance(header=header(total), claims=claims, provider_adjustments=adjustments)


def recoupment(amount: int, reference: str = "ICN00000009") -> ProviderAdjustment:
    return ProviderAdjustment(
        provider_id=NPI, fiscal_period_end=date(2026, 12, 31), reason="WO", reference=reference, amount=amount
    )


def write(*remittances: Remittance, control_number: int = 1) -> str:
    return remittance_interchange(
        remittances,
        sender=Party("ZZ", "SANDBOXPAYER"),
        receiver=Party("ZZ", "MAPLECLINIC"),
        control_number=control_number,
        when=WHEN,
        usage="T",
    )


def mixed_claims(count: int, start: int = 1) -> list[Claim]:
    """Paid, partially paid and denied claims in turn: the bench's files."""
    makers = (paid_claim, partially_paid_claim, denied_claim)
    return [makers[number % 3](number) for number in range(start, start + count)]


# -- random models for property tests: values X12 can carry (no delimiters, no layout characters)
_ID = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", min_size=1, max_size=12)
_NAME = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=15)
_CENTS = st.integers(min_value=-10_000_000, max_value=10_000_000)
_DATES = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))
_UNITS = st.one_of(st.none(), st.sampled_from(["1", "2", "0.5", "12"]))


@st.composite
def adjustments(draw: st.DrawFn) -> tuple[Adjustment, ...]:
    return tuple(
        draw(
            st.lists(
                st.builds(
                    Adjustment,
                    group=st.sampled_from(["CO", "OA", "PI", "PR"]),
                    reason=st.sampled_from(["1", "2", "3", "45", "50", "97", "B7", "253"]),
                    amount=_CENTS,
                    quantity=_UNITS,
                ),
                max_size=8,
            )
        )
    )


@st.composite
def service_lines(draw: st.DrawFn) -> ServiceLine:
    start = draw(st.one_of(st.none(), _DATES))
    end = None if start is None else draw(st.one_of(st.none(), st.just(start), _DATES))
    return ServiceLine(
        qualifier=draw(st.sampled_from(["HC", "NU", "AD"])),
        code=draw(_ID),
        modifiers=tuple(draw(st.lists(st.sampled_from(["25", "59", "GT", "LT"]), max_size=4))),
        charge=draw(_CENTS),
        paid=draw(_CENTS),
        revenue_code=draw(st.one_of(st.none(), st.sampled_from(["0450", "0301"]))),
        units=draw(_UNITS),
        service_start=start,
        service_end=end,
        adjustments=draw(adjustments()),
        control_number=draw(st.one_of(st.none(), _ID)),
        allowed=draw(st.one_of(st.none(), _CENTS)),
        remarks=tuple(draw(st.lists(st.sampled_from(["N130", "M15", "MA130"]), max_size=3))),
    )


def _person(entity_type: str = "1") -> st.SearchStrategy[Person]:
    return st.builds(
        Person,
        entity_type=st.just(entity_type),
        last=_NAME,
        first=st.one_of(st.none(), _NAME),
        middle=st.one_of(st.none(), _NAME),
        suffix=st.one_of(st.none(), st.just("JR")),
        identifier_qualifier=st.just("MI"),
        identifier=_ID,
    )


@st.composite
def claims(draw: st.DrawFn) -> Claim:
    return Claim(
        patient_control_number=draw(_ID),
        status=draw(st.sampled_from(["1", "2", "3", "4", "19", "22", "23"])),
        charge=draw(_CENTS),
        paid=draw(_CENTS),
        patient_responsibility=draw(st.one_of(st.none(), _CENTS)),
        filing_indicator=draw(st.sampled_from(["12", "MB", "MC", "HM"])),
        payer_claim_control_number=draw(_ID),
        facility_type=draw(st.one_of(st.none(), st.sampled_from(["11", "13"]))),
        frequency=draw(st.one_of(st.none(), st.sampled_from(["1", "7", "8"]))),
        adjustments=draw(adjustments()),
        patient=draw(_person()),
        insured=draw(st.one_of(st.none(), _person())),
        rendering=draw(st.one_of(st.none(), _person("2"))),
        remarks=tuple(draw(st.lists(st.sampled_from(["MA01", "MA18", "N1"]), max_size=5))),
        inpatient_remarks=tuple(draw(st.lists(st.sampled_from(["MA01", "N20"]), max_size=5))),
        references=tuple(
            draw(st.lists(st.builds(Reference, st.sampled_from(["1L", "EA", "F8"]), _ID), max_size=3))
        ),
        service_start=draw(st.one_of(st.none(), _DATES)),
        service_end=draw(st.one_of(st.none(), _DATES)),
        received=draw(st.one_of(st.none(), _DATES)),
        lines=tuple(draw(st.lists(service_lines(), max_size=4))),
    )


@st.composite
def remittances(draw: st.DrawFn) -> Remittance:
    found = tuple(draw(st.lists(claims(), max_size=4)))
    plb = tuple(
        draw(
            st.lists(
                st.builds(
                    ProviderAdjustment,
                    provider_id=st.sampled_from([NPI, "1098765432"]),
                    fiscal_period_end=st.sampled_from([date(2026, 12, 31), date(2027, 12, 31)]),
                    reason=st.sampled_from(["WO", "L6", "FB", "72"]),
                    reference=st.one_of(st.none(), _ID),
                    amount=_CENTS,
                ),
                max_size=8,
            )
        )
    )
    base = header(draw(_CENTS))
    return Remittance(header=base, claims=found, provider_adjustments=plb)
