"""Writing an 835 (005010X221A1) from the typed model: what the sandbox payer answers a claim file with.

The writer takes the reader's ``Remittance`` (``balance`` and ``findings`` are the reader's and are not
written), so a read file written back reads the same. Segment order follows the guide: the header, the payer
and payee loops, one LX header number, each claim (CLP, CAS, NM1, MIA, MOA, REF, DTM, then its SVC lines with
DTM, CAS, REF, AMT, LQ) and PLB last. Adjustments of one group go into one CAS, six reasons to a segment.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from itertools import groupby

from rcm.x12.remittance_model import (
    Address,
    Adjustment,
    Claim,
    Payee,
    Payer,
    Person,
    ProviderAdjustment,
    Remittance,
    ServiceLine,
)
from rcm.x12.writer import Element, Party, TransactionWriter, amount, single_group_interchange, text

IMPLEMENTATION = "005010X221A1"


def _d8(value: date) -> str:
    return value.strftime("%Y%m%d")


def _address(body: TransactionWriter, address: Address | None) -> None:
    if address is None:
        return
    delimiters = body.delimiters
    body.segment("N3", text(address.line1, delimiters), text(address.line2, delimiters))
    body.segment("N4", text(address.city, delimiters), address.state, address.postal_code)


def _payer(body: TransactionWriter, payer: Payer) -> None:
    body.segment("N1", "PR", text(payer.name, body.delimiters), payer.identifier_qualifier, payer.identifier)
    _address(body, payer.address)
    if payer.payer_id:
        body.segment("REF", "2U", payer.payer_id)
    contact = payer.technical_contact
    if contact is not None:
        name = text(contact.name, body.delimiters)
        body.segment("PER", contact.function, name, "TE" if contact.phone else None, contact.phone)


def _payee(body: TransactionWriter, payee: Payee) -> None:
    name = text(payee.name, body.delimiters)
    if payee.npi:
        body.segment("N1", "PE", name, "XX", payee.npi)
    else:
        body.segment("N1", "PE", name, "FI" if payee.tin else None, payee.tin)
    _address(body, payee.address)
    if payee.npi and payee.tin:
        body.segment("REF", "TJ", payee.tin)


def write_adjustments(body: TransactionWriter, adjustments: Sequence[Adjustment]) -> None:
    """CAS segments: one per run of a group, six reasons to a segment (the 835 and the 837 2320/2430)."""
    for group, run in groupby(adjustments, key=lambda adjustment: adjustment.group):
        items = list(run)
        for start in range(0, len(items), 6):
            elements: list[Element] = [group]
            for adjustment in items[start : start + 6]:
                elements += [adjustment.reason, amount(adjustment.amount), adjustment.quantity]
            body.segment("CAS", *elements)


def write_person(body: TransactionWriter, qualifier: str, person: Person) -> None:
    """An NM1 (the 277s write theirs with it too): names are free text, cleaned of delimiters."""
    delimiters = body.delimiters
    body.segment(
        "NM1",
        qualifier,
        person.entity_type,
        text(person.last, delimiters),
        text(person.first, delimiters),
        text(person.middle, delimiters),
        None,
        person.suffix,
        person.identifier_qualifier,
        person.identifier,
    )


def _dates(body: TransactionWriter, start: date | None, end: date | None, codes: tuple[str, str]) -> None:
    if start is not None:
        body.segment("DTM", codes[0], _d8(start))
    if end is not None:
        body.segment("DTM", codes[1], _d8(end))


def _line(body: TransactionWriter, line: ServiceLine) -> None:
    procedure = (line.qualifier, line.code, *line.modifiers)
    # SVC06: the procedure as billed, when the payer adjudicated another (bundled or split lines)
    original = (line.qualifier, line.original_code, *line.original_modifiers) if line.original_code else None
    body.segment(
        "SVC", procedure, amount(line.charge), amount(line.paid), line.revenue_code, line.units, original
    )
    if line.service_start is not None and line.service_start == line.service_end:
        body.segment("DTM", "472", _d8(line.service_start))
    else:
        _dates(body, line.service_start, line.service_end, ("150", "151"))
    write_adjustments(body, line.adjustments)
    if line.control_number:
        body.segment("REF", "6R", line.control_number)
    if line.allowed is not None:
        body.segment("AMT", "B6", amount(line.allowed))
    for remark in line.remarks:
        body.segment("LQ", "HE", remark)


def write_claim(body: TransactionWriter, claim: Claim) -> None:
    """One claim payment loop (2100) and its service lines (2110)."""
    body.segment(
        "CLP",
        claim.patient_control_number,
        claim.status,
        amount(claim.charge),
        amount(claim.paid),
        None if claim.patient_responsibility is None else amount(claim.patient_responsibility),
        claim.filing_indicator,
        claim.payer_claim_control_number,
        claim.facility_type,
        claim.frequency,
    )
    write_adjustments(body, claim.adjustments)
    write_person(body, "QC", claim.patient)
    if claim.insured is not None:
        write_person(body, "IL", claim.insured)
    if claim.rendering is not None:
        write_person(body, "82", claim.rendering)
    if claim.inpatient_remarks:
        # MIA01 (covered days or visits) is required by the segment; the model carries only the remarks.
        first, *others = claim.inpatient_remarks
        body.segment("MIA", "0", None, None, None, first, *([None] * 14), *others)
    if claim.remarks:
        body.segment("MOA", None, None, *claim.remarks)
    for reference in claim.references:
        body.segment("REF", reference.qualifier, reference.value)
    _dates(body, claim.service_start, claim.service_end, ("232", "233"))
    if claim.received is not None:
        body.segment("DTM", "050", _d8(claim.received))
    if claim.interest is not None:
        body.segment("AMT", "I", amount(claim.interest))
    for line in claim.lines:
        _line(body, line)


def _provider_adjustments(body: TransactionWriter, adjustments: Sequence[ProviderAdjustment]) -> None:
    def key(adjustment: ProviderAdjustment) -> tuple[str, date]:
        return adjustment.provider_id, adjustment.fiscal_period_end

    for (provider, period_end), run in groupby(adjustments, key=key):
        items = list(run)
        for start in range(0, len(items), 6):
            elements: list[Element] = [provider, _d8(period_end)]
            for adjustment in items[start : start + 6]:
                elements += [(adjustment.reason, adjustment.reference), amount(adjustment.amount)]
            body.segment("PLB", *elements)


def write_remittance(body: TransactionWriter, remittance: Remittance) -> None:
    """The body of one 835 transaction set (between ST and SE) into ``body``."""
    header = remittance.header
    funds = header.funds
    bank: list[Element] = [None] * 11
    if funds is not None:
        sender, receiver = funds.sender, funds.receiver
        bank = [
            funds.format,
            sender.dfi_qualifier,
            sender.dfi,
            sender.account_qualifier,
            sender.account,
            funds.originator_id,
            funds.originator_supplemental,
            receiver.dfi_qualifier,
            receiver.dfi,
            receiver.account_qualifier,
            receiver.account,
        ]
    body.segment(
        "BPR",
        header.handling,
        amount(header.total_paid),
        header.credit_debit,
        header.payment_method,
        *bank,
        _d8(header.payment_date),
    )
    body.segment("TRN", "1", header.trace_number, header.trace_originator)
    if header.receiver_id:
        body.segment("REF", "EV", header.receiver_id)
    if header.production_date is not None:
        body.segment("DTM", "405", _d8(header.production_date))
    _payer(body, header.payer)
    _payee(body, header.payee)
    if remittance.claims:
        body.segment("LX", 1)
        for claim in remittance.claims:
            write_claim(body, claim)
    _provider_adjustments(body, remittance.provider_adjustments)


def remittance_interchange(
    remittances: Iterable[Remittance],
    *,
    sender: Party,
    receiver: Party,
    control_number: int,
    when: datetime,
    usage: str = "P",
) -> str:
    """An interchange of one HP functional group holding one 835 per remittance (one per payment)."""
    return single_group_interchange(
        remittances,
        write_remittance,
        functional_id="HP",
        transaction_set="835",
        implementation=IMPLEMENTATION,
        st03="",  # X221A1 marks ST03 not used (the 837 and 999 guides require it)
        sender=sender,
        receiver=receiver,
        control_number=control_number,
        when=when,
        usage=usage,
    )
