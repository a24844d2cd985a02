"""Claim batches for the 837 tests: hand-made ones with every loop, and Hypothesis strategies for random ones.

Random values stay inside what X12 writes back unchanged: names without delimiters or doubled spaces and
within the elements' lengths, optional text either absent or non-empty.
"""

from __future__ import annotations

import string
from datetime import date, datetime, timedelta

from hypothesis import strategies as st

from rcm.x12.claims import (
    BillingProvider,
    Claim,
    ClaimBatch,
    Institutional,
    Patient,
    Payer,
    Receiver,
    ServiceFacility,
    ServiceLine,
    Submitter,
    Subscriber,
    SubscriberLoop,
)
from rcm.x12.model import Address, Envelope, PersonName, Provider
from rcm.x12.npi import npi_check_digit_valid

WHEN = datetime(2026, 12, 1, 9, 30)
DAY = date(2026, 11, 2)


def npi(stem: str) -> str:
    """The NPI starting with nine digits ``stem`` whose check digit is right."""
    return next(stem + digit for digit in string.digits if npi_check_digit_valid(stem + digit))


ADDRESS = Address(
    line1="100 MAIN ST", line2="SUITE 2", city="SPRINGFIELD", state="IL", postal_code="627010001"
)
HOME = Address(line1="7 ELM RD", city="CHATHAM", state="IL", postal_code="62629")
RENDERING = Provider(npi=npi("123456789"), last="SMITH", first="ANNA", taxonomy="207Q00000X")
REFERRING = Provider(npi=npi("198765432"), last="JONES", first="PAUL", middle="Q")
CLINIC_AS_PROVIDER = Provider(npi=npi("145678901"), last="SPRINGFIELD CLINIC", organization=True)
ATTENDING = Provider(npi=npi("111222333"), last="BROWN", first="LEE", taxonomy="207P00000X")
SUBSCRIBER = Subscriber(
    member_id="W123456789",
    name=PersonName(last="DOE", first="JOHN", middle="A", suffix="JR"),
    birth_date=date(1980, 1, 2),
    sex="M",
    address=HOME,
    group_number="GRP100",
    claim_filing_indicator="CI",
)
CHILD = Patient(
    relationship="19",
    name=PersonName(last="DOE", first="JILL"),
    birth_date=date(2012, 5, 6),
    sex="F",
    address=HOME,
)
AETNA = Payer(name="AETNA", payer_id="60054")
MEDICARE = Payer(name="MEDICARE PART B", payer_id="00952")


def line(charge: int = 12550, code: str = "99213", **fields: object) -> ServiceLine:
    values: dict[str, object] = {"diagnosis_pointers": (1,), "service_date": DAY, **fields}
    return ServiceLine(charge=charge, procedure=code, **values)  # type: ignore[arg-type]


def claim(number: str = "PCN001", lines: tuple[ServiceLine, ...] = (), **fields: object) -> Claim:
    lines = lines or (line(),)
    values: dict[str, object] = {"place_of_service": "11", "diagnoses": ("E11.9", "I10"), **fields}
    return Claim(
        patient_control_number=number,
        total_charge=sum(item.charge for item in lines),
        lines=lines,
        **values,  # type: ignore[arg-type]
    )


def institutional_claim(number: str = "INST001", **fields: object) -> Claim:
    lines = (
        ServiceLine(
            charge=80000, revenue_code="0450", procedure="99284", modifiers=("25",), service_date=DAY
        ),
        ServiceLine(charge=15000, revenue_code="0300", service_date=DAY, units="2"),
    )
    facts = Institutional(
        statement_start=DAY,
        statement_end=DAY + timedelta(days=2),
        attending=ATTENDING,
        admission_date=DAY,
        admission_hour=14,
        admission_type="1",
        admission_source="7",
        patient_status="01",
        admitting_diagnosis="R07.9",
    )
    values: dict[str, object] = {
        "place_of_service": "13",
        "diagnoses": ("R07.9", "I10"),
        "institutional": facts,
        **fields,
    }
    return Claim(
        patient_control_number=number,
        total_charge=95000,
        lines=lines,
        **values,  # type: ignore[arg-type]
    )


def billing_provider(
    loops: tuple[SubscriberLoop, ...], stem: str = "145678901", **fields: object
) -> BillingProvider:
    values: dict[str, object] = {"taxonomy": "207Q00000X", **fields}
    return BillingProvider(
        name="SPRINGFIELD FAMILY MEDICINE",
        npi=npi(stem),
        tin="371234567",
        address=ADDRESS,
        subscribers=loops,
        **values,  # type: ignore[arg-type]
    )


def batch(*providers: BillingProvider, control: int = 1) -> ClaimBatch:
    return ClaimBatch(
        envelope=Envelope(
            sender_id="SUBMITTER01",
            receiver_id="CLEARINGHOUSE",
            interchange_control_number=control,
            group_control_number=control,
            created=WHEN,
            usage="T",
        ),
        reference=f"BATCH{control}",
        submitter=Submitter(
            name="RCM BILLING",
            identifier="SUBMITTER01",
            contact_name="BILLING DESK",
            phone="2175550100",
            email="desk@example.org",
        ),
        receiver=Receiver(name="CLEARINGHOUSE", identifier="CLEARINGHOUSE"),
        billing_providers=providers,
    )


# --- Hypothesis strategies

# At least two characters: the guides give most ids and names a minimum length of 2.
_WORD = st.text(alphabet=string.ascii_uppercase, min_size=2, max_size=12)
_ID = st.text(alphabet=string.ascii_uppercase + string.digits, min_size=2, max_size=15)
_CODE = st.builds(
    lambda letter, rest: letter + rest,
    st.sampled_from("ABCDEFGIJKLMNR"),
    st.text(alphabet=string.digits, min_size=2, max_size=6),
)
_NPIS = st.text(alphabet=string.digits, min_size=9, max_size=9).map(npi)
_DATES = st.dates(date(1920, 1, 1), date(2090, 12, 31))


def _optional(strategy: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.none() | strategy


addresses = st.builds(
    Address,
    line1=_WORD,
    line2=_optional(_WORD),
    city=_WORD,
    state=st.sampled_from(["IL", "NY", "CA"]),
    postal_code=st.sampled_from(["62701", "627010001", "10001"]),
)
# The billing provider's ZIP code is the nine-digit ZIP+4 (837 guides).
billing_addresses = st.builds(
    Address,
    line1=_WORD,
    line2=_optional(_WORD),
    city=_WORD,
    state=st.sampled_from(["IL", "NY", "CA"]),
    postal_code=st.sampled_from(["627010001", "100012345"]),
)
names = st.builds(
    PersonName,
    last=_WORD,
    first=_optional(_WORD),
    middle=_optional(_WORD),
    suffix=_optional(st.sampled_from(["JR", "SR", "III"])),
)
people = st.builds(Provider, npi=_NPIS, last=_WORD, first=_optional(_WORD), middle=_optional(_WORD))
with_taxonomy = st.builds(
    Provider, npi=_NPIS, last=_WORD, first=_optional(_WORD), taxonomy=_optional(st.just("207Q00000X"))
)
organizations = st.builds(Provider, npi=_NPIS, last=_WORD, organization=st.just(True))
_UNITS = st.sampled_from(["1", "2", "0.5", "12"])
_MONEY = st.integers(0, 5_000_000)


@st.composite
def _dates(draw: st.DrawFn) -> tuple[date, date | None]:
    start = draw(_DATES)
    span = draw(st.integers(0, 3))
    return start, (start + timedelta(days=span) if span else None)


@st.composite
def professional_claims(draw: st.DrawFn) -> Claim:
    diagnoses = tuple(draw(st.lists(_CODE, min_size=1, max_size=12)))
    lines = []
    for _ in range(draw(st.integers(1, 4))):
        start, end = draw(_dates())
        lines.append(
            ServiceLine(
                charge=draw(_MONEY),
                units=draw(_UNITS),
                procedure=draw(_ID),
                modifiers=tuple(draw(st.lists(st.sampled_from(["25", "59", "LT", "RT", "GT"]), max_size=4))),
                place_of_service=draw(_optional(st.sampled_from(["11", "22"]))),
                diagnosis_pointers=tuple(
                    draw(st.lists(st.integers(1, len(diagnoses)), min_size=1, max_size=4, unique=True))
                ),
                service_date=start,
                service_date_end=end,
                control_number=draw(_optional(_ID)),
                rendering=draw(_optional(with_taxonomy)),
                referring=draw(_optional(people)),
            )
        )
    return _claim(draw, diagnoses, tuple(lines), None)


@st.composite
def institutional_claims(draw: st.DrawFn) -> Claim:
    diagnoses = tuple(draw(st.lists(_CODE, min_size=1, max_size=20)))
    lines = []
    for _ in range(draw(st.integers(1, 4))):
        start, end = draw(_dates())
        code = draw(_optional(_ID))
        lines.append(
            ServiceLine(
                charge=draw(_MONEY),
                units=draw(_UNITS),
                revenue_code=draw(st.sampled_from(["0450", "0300", "0250"])),
                procedure=code,
                modifiers=tuple(draw(st.lists(st.just("25"), max_size=2))) if code else (),
                service_date=draw(_optional(st.just(start))),
                control_number=draw(_optional(_ID)),
                rendering=draw(_optional(people)),
                referring=draw(_optional(people)),
            )
        )
    start, end = draw(_dates())
    admitted = draw(_optional(_DATES))
    facts = Institutional(
        statement_start=start,
        statement_end=end or start,
        attending=draw(with_taxonomy),
        admission_date=admitted,
        admission_hour=draw(_optional(st.integers(0, 23))) if admitted else None,
        admission_type=draw(_optional(st.just("1"))),
        admission_source=draw(_optional(st.just("7"))),
        patient_status=draw(st.sampled_from(["01", "02", "30"])),
        admitting_diagnosis=draw(_optional(_CODE)),
    )
    return _claim(draw, diagnoses, tuple(lines), facts)


def _claim(
    draw: st.DrawFn, diagnoses: tuple[str, ...], lines: tuple[ServiceLine, ...], facts: Institutional | None
) -> Claim:
    frequency = draw(st.sampled_from(["1", "7", "8"]))
    return Claim(
        patient_control_number=draw(_ID),
        total_charge=sum(item.charge for item in lines),
        place_of_service=draw(st.sampled_from(["11", "13", "22"])),
        diagnoses=diagnoses,
        lines=lines,
        frequency=frequency,
        payer_claim_control_number=draw(_ID) if frequency != "1" else draw(_optional(_ID)),
        provider_signature=True if facts else draw(st.booleans()),
        assignment=draw(st.sampled_from("ABC")),
        benefits_assigned=draw(st.sampled_from("YNW")),
        release_of_information=draw(st.sampled_from("YI")),
        prior_authorization=draw(_optional(_ID)),
        referring=draw(_optional(people)),
        rendering=draw(_optional(with_taxonomy | organizations if facts is None else people)),
        service_facility=draw(
            _optional(st.builds(ServiceFacility, name=_WORD, address=addresses, npi=_optional(_NPIS)))
        ),
        institutional=facts,
    )


@st.composite
def subscriber_loops(draw: st.DrawFn, claims: st.SearchStrategy[Claim]) -> SubscriberLoop:
    patient = draw(
        _optional(
            st.builds(
                Patient,
                relationship=st.sampled_from(["01", "19", "20", "21", "G8"]),
                name=names,
                birth_date=_DATES,
                sex=st.sampled_from("FMU"),
                address=addresses,
            )
        )
    )
    # The guides want the subscriber's address, birth date and sex when the subscriber is the patient.
    born = draw(_DATES if patient is None else _optional(_DATES))
    subscriber = Subscriber(
        member_id=draw(_ID),
        name=draw(names),
        birth_date=born,
        sex=draw(st.sampled_from("FMU")) if born else None,
        address=draw(addresses if patient is None else _optional(addresses)),
        group_number=draw(_optional(_ID)),
        group_name=draw(_optional(_WORD)),
        claim_filing_indicator=draw(st.sampled_from(["CI", "MB", "MC", "BL"])),
        responsibility=draw(st.sampled_from("PST")),
    )
    return SubscriberLoop(
        payer=draw(st.builds(Payer, name=_WORD, payer_id=_ID)),
        subscriber=subscriber,
        claims=tuple(draw(st.lists(claims, min_size=1, max_size=3))),
        patient=patient,
    )


@st.composite
def batches(draw: st.DrawFn) -> ClaimBatch:
    claims = draw(st.sampled_from([professional_claims(), institutional_claims()]))
    providers = tuple(
        BillingProvider(
            name=draw(_WORD),
            npi=draw(_NPIS),
            tin=draw(st.text(alphabet=string.digits, min_size=9, max_size=9)),
            address=draw(billing_addresses),
            taxonomy=draw(_optional(st.just("207Q00000X"))),
            pay_to=draw(_optional(addresses)),
            subscribers=tuple(draw(st.lists(subscriber_loops(claims), min_size=1, max_size=3))),
        )
        for _ in range(draw(st.integers(1, 3)))
    )
    return ClaimBatch(
        envelope=Envelope(
            sender_id=draw(_ID),
            receiver_id=draw(_ID),
            interchange_control_number=draw(st.integers(1, 999_999_999)),
            group_control_number=draw(st.integers(1, 999_999)),
            created=datetime.combine(draw(st.dates(date(2000, 1, 1), date(2090, 1, 1))), datetime.min.time())
            + timedelta(minutes=draw(st.integers(0, 1439))),
            usage=draw(st.sampled_from("PT")),
        ),
        reference=draw(_ID),
        transaction_type=draw(st.sampled_from(["CH", "RP"])),
        submitter=Submitter(
            name=draw(_WORD),
            identifier=draw(_ID),
            contact_name=draw(_WORD),
            phone=draw(st.just("2175550100")),
            email=draw(_optional(st.just("a@b.org"))),
        ),
        receiver=Receiver(name=draw(_WORD), identifier=draw(_ID)),
        billing_providers=providers,
    )
