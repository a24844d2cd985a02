"""Reading 837P and 837I back into the claim model: ``read(transaction)`` for one transaction set (what
``rcm x12 parse`` shows), ``read_batch(source)`` for a whole interchange as the ``ClaimBatch`` it was written
from (write then read gives the same batch).

The reader walks the segments once, keeping only where it is (billing provider, subscriber, patient, claim,
line, other payer, line adjudication) and which name the next N3/N4/DMG/PRV belong to. Segments it does not
model (onset dates, notes, supervising providers, the other payers' provider loops 2330C-G) are passed over,
so real files read; what it models is read strictly (money to cents, dates, codes), and a missing required
element is an ``X12Error`` naming the segment or the model field, never a value.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any, BinaryIO

import msgspec

from rcm.x12.claims import BillingProvider, ClaimBatch, Receiver, Submitter
from rcm.x12.envelope import Transaction, transactions
from rcm.x12.errors import X12Error
from rcm.x12.model import Envelope, convert, envelope_of, required, sex_code
from rcm.x12.segments import Segment
from rcm.x12.values import cents, date8, period, quantity

Builder = dict[str, Any]


class ClaimTransaction(msgspec.Struct, frozen=True, kw_only=True):
    """One 837 transaction set as read: its header loops and billing providers."""

    kind: str  # 837P or 837I
    reference: str
    transaction_type: str
    submitter: Submitter
    receiver: Receiver
    billing_providers: tuple[BillingProvider, ...]


def read(transaction: Transaction) -> ClaimTransaction:
    if transaction.kind not in ("837P", "837I"):
        raise X12Error("not an 837P or 837I transaction set", segment_id="ST", position=transaction.st.index)
    if not transaction.header.implementation.startswith("005010"):
        raise X12Error(
            "only the 5010 guides (005010X222A1, 005010X223A2) are read",
            segment_id="ST",
            element=3,
            position=transaction.st.index,
        )
    walk = _Walk(transaction.kind, transaction.delimiters.component)
    for segment in transaction:
        walk.step(segment)
    return walk.result(transaction)


def read_batch(source: bytes | str | BinaryIO) -> ClaimBatch:
    """One interchange of 837 transaction sets as the batch it was written from."""
    envelope: Envelope | None = None
    interchange: object = None
    first: ClaimTransaction | None = None
    providers: list[BillingProvider] = []
    for transaction in transactions(source):
        if interchange is None:
            interchange = transaction.interchange
            envelope = envelope_of(transaction)
        elif transaction.interchange is not interchange:
            raise X12Error("a claim batch is one interchange; this file holds several", segment_id="ISA")
        read_one = read(transaction)
        first = first or read_one
        providers.extend(read_one.billing_providers)
    if first is None or envelope is None:
        raise X12Error("no 837 transaction set in the file", segment_id="ST")
    return ClaimBatch(
        envelope=envelope,
        reference=first.reference,
        submitter=first.submitter,
        receiver=first.receiver,
        billing_providers=tuple(providers),
        transaction_type=first.transaction_type,
    )


def name_of(segment: Segment) -> Builder:
    return {
        "last": segment[3],
        "first": segment[4] or None,
        "middle": segment[5] or None,
        "suffix": segment[7] or None,
    }


def provider_of(segment: Segment) -> Builder:
    if segment[8] != "XX":
        raise X12Error(
            "a provider is named by NPI (qualifier XX)", segment_id="NM1", element=8, position=segment.index
        )
    return {
        "npi": segment[9],
        "last": segment[3],
        "first": segment[4] or None,
        "middle": segment[5] or None,
        "organization": segment[2] == "2",
    }


def address_into(target: Builder, segment: Segment) -> None:
    """N3 then N4 of the current name; an N4 without its N3 is refused (the model has no address without a
    street)."""
    if segment.id == "N3":
        target["address"] = {"line1": segment[1], "line2": segment[2] or None}
    elif "address" not in target:
        raise X12Error("N4 without the N3 before it", segment_id="N4", position=segment.index)
    else:
        target["address"].update(city=segment[1], state=segment[2], postal_code=segment[3])


def dates_of(segment: Segment) -> tuple[date, date]:
    return period(segment, 2, 3)


# The NM1 entity codes that name a provider in the claim or line loops, and the model field each fills.
_CLAIM_PROVIDERS_P = {"DN": "referring", "82": "rendering"}
_CLAIM_PROVIDERS_I = {"DN": "referring", "82": "rendering", "71": "attending"}


class _Walk:
    def __init__(self, kind: str, component: str) -> None:
        self.kind = kind
        self.component = component
        self.header: Builder = {}
        self.providers: list[Builder] = []
        self.provider: Builder | None = None
        self.subscriber: Builder | None = None  # the 2000B loop being read
        self.patient_loop: Builder | None = None  # the 2000C loop being read
        self.claim: Builder | None = None
        self.line: Builder | None = None
        self.other: Builder | None = None  # the 2320/2330 other subscriber being read
        self.adjudication: Builder | None = None  # the 2430 line adjudication being read
        self.named: Builder | None = None  # what the last NM1 named: N3/N4/DMG/PRV fill it

    def step(self, segment: Segment) -> None:
        handler = getattr(self, "_" + segment.id, None)
        if handler is not None:
            handler(segment)

    # --- header
    def _BHT(self, segment: Segment) -> None:
        self.header["reference"] = required(segment, 3, "BHT03 reference")
        self.header["transaction_type"] = segment[6] or "CH"

    def _PER(self, segment: Segment) -> None:
        if self.provider is None and "submitter" in self.header:
            contact = self.header["submitter"]
            contact["contact_name"] = segment[2]
            for position in (3, 5, 7):
                if segment[position] == "TE":
                    contact["phone"] = segment[position + 1]
                elif segment[position] == "EM":
                    contact["email"] = segment[position + 1]

    def _HL(self, segment: Segment) -> None:
        level = segment[3]
        self.claim = self.line = self.named = self.other = self.adjudication = None
        if level == "20":
            self.provider = {"subscribers": [], "loops": []}
            self.providers.append(self.provider)
            self.subscriber = self.patient_loop = None
        elif level == "22":
            if self.provider is None:
                raise X12Error(
                    "subscriber loop before any billing provider", segment_id="HL", position=segment.index
                )
            self.subscriber = {"claims": [], "patients": []}
            self.provider["loops"].append(self.subscriber)
            self.patient_loop = None
        elif level == "23":
            if self.subscriber is None:
                raise X12Error("patient loop before any subscriber", segment_id="HL", position=segment.index)
            self.patient_loop = {"claims": []}
            self.subscriber["patients"].append(self.patient_loop)
        else:
            raise X12Error(
                "unknown hierarchical level code", segment_id="HL", element=3, position=segment.index
            )

    def _PRV(self, segment: Segment) -> None:
        if segment[1] == "BI" and self.provider is not None and self.subscriber is None:
            self.provider["taxonomy"] = segment[3] or None
        elif segment[1] in ("PE", "AT") and self.named is not None and "npi" in self.named:
            self.named["taxonomy"] = segment[3] or None

    def _SBR(self, segment: Segment) -> None:
        if self.claim is not None:
            self._other_subscriber(segment)
            return
        if self.subscriber is None:
            raise X12Error("SBR outside a subscriber loop", segment_id="SBR", position=segment.index)
        self.subscriber["subscriber"] = {
            "responsibility": required(segment, 1, "payer responsibility"),
            "group_number": segment[3] or None,
            "group_name": segment[4] or None,
            "claim_filing_indicator": segment[9] or "CI",
        }

    def _other_subscriber(self, segment: Segment) -> None:
        """2320 SBR: another payer of the claim (the line loops come after every 2320)."""
        assert self.claim is not None
        if self.line is not None:
            raise X12Error(
                "other subscriber loop after the service lines", segment_id="SBR", position=segment.index
            )
        self.other = {
            "responsibility": required(segment, 1, "SBR01 payer responsibility"),
            "relationship": required(segment, 2, "SBR02 individual relationship"),
            "group_number": segment[3] or None,
            "group_name": segment[4] or None,
            "claim_filing_indicator": segment[9] or "CI",
            "adjustments": [],
        }
        self.claim.setdefault("other_subscribers", []).append(self.other)
        self.named = None

    def _CAS(self, segment: Segment) -> None:
        target = self.adjudication if self.line is not None else self.other
        if target is not None:
            target["adjustments"].extend(_adjustments(segment))

    def _AMT(self, segment: Segment) -> None:
        target = self.adjudication if self.line is not None else self.other
        if target is None:
            return
        if segment[1] == "D" and self.line is None:
            target["paid"] = cents(segment, 2)
        elif segment[1] == "EAF":
            target["remaining_patient_liability"] = cents(segment, 2)

    def _OI(self, segment: Segment) -> None:
        if self.other is not None:
            self.other["benefits_assigned"] = segment[3] or "Y"
            self.other["release_of_information"] = segment[6] or "Y"

    def _SVD(self, segment: Segment) -> None:
        line = self._line(segment)
        code = segment.components(3, self.component) if segment[3] else []
        procedure = code[1] if len(code) > 1 else None
        modifiers = [modifier for modifier in code[2:6] if modifier]
        if procedure == line.get("procedure") and modifiers == line.get("modifiers"):
            procedure, modifiers = None, []  # the line's own, as the writer takes it
        self.adjudication = {
            "payer_id": required(segment, 1, "SVD01 other payer identifier"),
            "paid": cents(segment, 2),
            "procedure": procedure,
            "modifiers": modifiers,
            "revenue_code": None if segment[4] == line.get("revenue_code") else segment[4] or None,
            "units": quantity(segment, 5) or "1",
            "adjustments": [],
        }
        line.setdefault("adjudications", []).append(self.adjudication)

    def _PAT(self, segment: Segment) -> None:
        if self.patient_loop is not None:
            self.patient_loop["patient"] = {"relationship": segment[1]}

    def _NM1(self, segment: Segment) -> None:
        entity = segment[1]
        self.named = None
        if self.claim is None:
            self._party(segment, entity)
            return
        if self.other is not None and self.line is None:
            if entity == "IL":
                self.other.update(name=name_of(segment), member_id=segment[9])
                self.named = self.other
            elif entity == "PR":
                self.other["payer"] = {"name": segment[3], "payer_id": segment[9]}
            return  # 2330C-G: the other payer's providers, not modelled
        table = _CLAIM_PROVIDERS_I if self.kind == "837I" else _CLAIM_PROVIDERS_P
        owner = self.line if self.line is not None else self.claim
        if entity in table and not (entity == "71" and self.line is not None):
            self.named = provider_of(segment)
            field = table[entity]
            if field == "attending":
                self.claim.setdefault("institutional", {})["attending"] = self.named
            else:
                owner[field] = self.named
        elif entity == "77" and self.line is None:
            self.named = {"name": segment[3], "npi": segment[9] or None}
            self.claim["service_facility"] = self.named

    def _party(self, segment: Segment, entity: str) -> None:
        if entity == "41":
            self.header["submitter"] = {"name": segment[3], "identifier": segment[9], "contact_name": ""}
        elif entity == "40":
            self.header["receiver"] = {"name": segment[3], "identifier": segment[9]}
        elif entity == "85" and self.provider is not None:
            self.provider.update(name=segment[3], npi=segment[9])
            self.named = self.provider
        elif entity == "87" and self.provider is not None:
            self.named = self.provider["pay_to_loop"] = {}
        elif entity == "IL" and self.subscriber is not None and "subscriber" in self.subscriber:
            person = self.subscriber["subscriber"]
            person.update(name=name_of(segment), member_id=segment[9])
            self.named = person
        elif entity == "PR" and self.subscriber is not None:
            self.subscriber["payer"] = {"name": segment[3], "payer_id": segment[9]}
        elif entity == "QC" and self.patient_loop is not None and "patient" in self.patient_loop:
            patient = self.patient_loop["patient"]
            patient["name"] = name_of(segment)
            self.named = patient

    def _N3(self, segment: Segment) -> None:
        if self.named is not None and self.line is None:
            address_into(self.named, segment)

    _N4 = _N3

    def _REF(self, segment: Segment) -> None:
        qualifier = segment[1]
        if qualifier == "EI" and self.provider is not None and self.subscriber is None:
            self.provider["tin"] = segment[2]
        elif self.other is not None and self.line is None:
            if qualifier == "F8":
                self.other["payer_claim_control_number"] = segment[2]
        elif self.line is not None:
            if qualifier == "6R":
                self.line["control_number"] = segment[2]
        elif self.claim is not None:
            if qualifier == "G1":
                self.claim["prior_authorization"] = segment[2]
            elif qualifier == "F8":
                self.claim["payer_claim_control_number"] = segment[2]

    def _DMG(self, segment: Segment) -> None:
        if self.named is not None and self.claim is None:
            self.named["birth_date"] = date8(segment, 2)
            self.named["sex"] = sex_code(segment[3], segment, 3)

    def _CLM(self, segment: Segment) -> None:
        target = self.patient_loop if self.patient_loop is not None else self.subscriber
        if target is None:
            raise X12Error(
                "claim outside a subscriber or patient loop", segment_id="CLM", position=segment.index
            )
        facility = segment.components(5, self.component)
        self.claim = {
            "patient_control_number": required(segment, 1, "CLM01 patient control number"),
            "total_charge": cents(segment, 2),
            "place_of_service": facility[0],
            "frequency": facility[2] if len(facility) > 2 else "",
            "provider_signature": segment[6] == "Y",
            "assignment": segment[7],
            "benefits_assigned": segment[8],
            "release_of_information": segment[9],
            "diagnoses": [],
            "lines": [],
        }
        if self.kind == "837I":
            self.claim["institutional"] = {}
            self.claim["provider_signature"] = True
        target["claims"].append(self.claim)
        self.line = self.named = self.other = self.adjudication = None

    def _DTP(self, segment: Segment) -> None:
        qualifier = segment[1]
        if qualifier == "573":
            target = self.adjudication if self.line is not None else self.other
            if target is not None:
                target["adjudicated"] = date8(segment, 3)
        elif self.line is not None and qualifier == "472":
            start, end = dates_of(segment)
            self.line["service_date"] = start
            self.line["service_date_end"] = end if end != start else None
        elif self.claim is not None and self.line is None and "institutional" in self.claim:
            facts = self.claim["institutional"]
            if qualifier == "434":
                facts["statement_start"], facts["statement_end"] = dates_of(segment)
            elif qualifier == "435":
                facts.update(_admission(segment))

    def _CL1(self, segment: Segment) -> None:
        if self.claim is not None and "institutional" in self.claim:
            self.claim["institutional"].update(
                admission_type=segment[1] or None,
                admission_source=segment[2] or None,
                patient_status=segment[3] or None,
            )

    def _HI(self, segment: Segment) -> None:
        if self.claim is None:
            raise X12Error("HI outside a claim", segment_id="HI", position=segment.index)
        for position in range(1, len(segment) + 1):
            parts = segment.components(position, self.component)
            if parts[0] in ("ABK", "BK", "ABF", "BF") and len(parts) > 1:
                self.claim["diagnoses"].append(parts[1])
            elif parts[0] in ("ABJ", "BJ") and len(parts) > 1 and "institutional" in self.claim:
                self.claim["institutional"]["admitting_diagnosis"] = parts[1]

    def _LX(self, segment: Segment) -> None:
        if self.claim is None:
            raise X12Error("service line outside a claim", segment_id="LX", position=segment.index)
        self.line = {}
        self.claim["lines"].append(self.line)
        self.named = self.adjudication = None

    def _SV1(self, segment: Segment) -> None:
        line = self._line(segment)
        code = segment.components(1, self.component)
        line.update(
            procedure=code[1] if len(code) > 1 else None,
            modifiers=[modifier for modifier in code[2:6] if modifier],
            charge=cents(segment, 2),
            units=quantity(segment, 4) or "1",
            place_of_service=segment[5] or None,
            diagnosis_pointers=_pointers(segment, self.component),
        )

    def _SV2(self, segment: Segment) -> None:
        line = self._line(segment)
        code = segment.components(2, self.component) if segment[2] else []
        line.update(
            revenue_code=required(segment, 1, "SV201 revenue code"),
            procedure=code[1] if len(code) > 1 else None,
            modifiers=[modifier for modifier in code[2:6] if modifier],
            charge=cents(segment, 3),
            units=quantity(segment, 5) or "1",
        )

    def _line(self, segment: Segment) -> Builder:
        if self.line is None:
            raise X12Error("service segment without its LX", segment_id=segment.id, position=segment.index)
        return self.line

    def result(self, transaction: Transaction) -> ClaimTransaction:
        providers = [_provider(raw) for raw in self.providers]
        data = {**self.header, "kind": transaction.kind, "billing_providers": providers}
        return convert(data, ClaimTransaction, transaction)


def _admission(segment: Segment) -> Builder:
    if segment[2] == "DT":
        raw = segment[3]
        if len(raw) != 12 or not raw.isdigit():
            raise X12Error(
                "not a CCYYMMDDHHMM date and time", segment_id="DTP", element=3, position=segment.index
            )
        start = Segment(["DTP", "", "", raw[:8]], segment.index, segment.offset)
        return {"admission_date": date8(start, 3), "admission_hour": int(raw[8:10])}
    start_date, _ = period(segment, 2, 3)
    return {"admission_date": start_date, "admission_hour": None}


def _adjustments(segment: Segment) -> list[Builder]:
    """CAS: the group and up to six reason/amount/quantity triples."""
    group = required(segment, 1, "CAS01 adjustment group")
    found = []
    for start in range(2, min(len(segment.elements), 20), 3):
        if segment[start]:
            found.append(
                {
                    "group": group,
                    "reason": segment[start],
                    "amount": cents(segment, start + 1),
                    "quantity": segment[start + 2] or None,
                }
            )
    return found


def _pointers(segment: Segment, component: str) -> list[int]:
    pointers = []
    for raw in segment.components(7, component):
        if not raw:
            continue
        if not raw.isdigit() or len(raw) > 2:
            raise X12Error(
                "diagnosis pointer is not a number", segment_id="SV1", element=7, position=segment.index
            )
        pointers.append(int(raw))
    return pointers


def _provider(raw: Builder) -> Builder:
    """The billing provider builder as the model's shape: subscriber loops flattened, one per patient."""
    loops = raw.pop("loops")
    pay_to = raw.pop("pay_to_loop", None)
    if pay_to is not None:
        raw["pay_to"] = pay_to.get("address")
    flattened: list[Builder] = []
    for loop in loops:
        common = {"payer": loop.get("payer"), "subscriber": loop.get("subscriber")}
        if loop["claims"] or not loop["patients"]:
            flattened.append({**common, "claims": loop["claims"]})
        flattened.extend({**common, **patient} for patient in loop["patients"])
    raw["subscribers"] = flattened
    return raw


def claim_numbers(transaction: ClaimTransaction) -> Iterable[str]:
    for provider in transaction.billing_providers:
        for loop in provider.subscribers:
            for claim in loop.claims:
                yield claim.patient_control_number
