"""What several transaction models share: the envelope the caller numbers, addresses, names, providers.

Frozen msgspec Structs, no database: the claims and eligibility services build them from their rows, the
writers turn them into X12 and the readers turn X12 back into them (write then read gives the same value).
"""

from __future__ import annotations

from datetime import date, datetime
from types import TracebackType
from typing import Any, TypeVar

import msgspec

from rcm.x12.envelope import Transaction
from rcm.x12.errors import X12Error
from rcm.x12.segments import Segment
from rcm.x12.writer import InterchangeWriter, Party, TransactionWriter, text

T = TypeVar("T")


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    """ISA and GS: who sends to whom, and the control numbers the caller allocates (never reused)."""

    sender_qualifier: str = "ZZ"
    sender_id: str
    receiver_qualifier: str = "ZZ"
    receiver_id: str
    interchange_control_number: int  # ISA13
    group_control_number: int  # GS06; a second group in the same interchange takes the next number
    created: datetime  # ISA09/10, GS04/05 (minutes)
    usage: str = "P"  # ISA15: P production, T test

    def writer(self) -> InterchangeWriter:
        return InterchangeWriter(
            sender=Party(self.sender_qualifier, self.sender_id),
            receiver=Party(self.receiver_qualifier, self.receiver_id),
            control_number=self.interchange_control_number,
            when=self.created,
            usage=self.usage,
        )


class SingleTransaction:
    """One interchange holding one group with one transaction set (a 270, 271 or 276): the ``with`` block gets
    the transaction's body, BHT written; ``text`` is the interchange once the block has ended."""

    def __init__(
        self,
        envelope: Envelope,
        *,
        functional_id: str,
        transaction_set: str,
        guide: str,
        structure: str,
        purpose: str,
        reference: str,
    ) -> None:
        self.writer = envelope.writer()
        self.group = self.writer.group(
            functional_id=functional_id,
            sender=envelope.sender_id,
            receiver=envelope.receiver_id,
            control_number=envelope.group_control_number,
            version=guide,
        )
        self.body = self.group.transaction(transaction_set, 1)
        created = envelope.created
        # BHT01 hierarchical structure code, BHT02 purpose (13 request, 11 response), BHT03 our reference.
        self.body.segment("BHT", structure, purpose, reference, d8(created), created.strftime("%H%M"))
        self.text = ""

    def __enter__(self) -> TransactionWriter:
        return self.body

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is None:
            self.body.close()
            self.group.close()
            self.text = self.writer.finish()


def convert(data: dict[str, Any], kind: type[T], transaction: Transaction) -> T:
    """Builder dicts into the model; msgspec's error names the field and its path, never the value."""
    try:
        return msgspec.convert(data, kind)
    except msgspec.ValidationError as exc:
        # msgspec quotes the offending value for some types (enums, literals): keep only where it is.
        where = str(exc).rpartition(" - at ")[2] if " - at " in str(exc) else "the transaction set"
        raise X12Error(
            f"the content does not fit the model at {where}", segment_id="ST", position=transaction.st.index
        ) from None


class Address(msgspec.Struct, frozen=True, kw_only=True):
    """N3/N4."""

    line1: str
    line2: str | None = None
    city: str
    state: str  # two-letter code (N402), US addresses
    postal_code: str  # 5 or 9 digits (N403)


class PersonName(msgspec.Struct, frozen=True, kw_only=True):
    """NM103-NM107 of a person."""

    last: str
    first: str | None = None
    middle: str | None = None
    suffix: str | None = None


class Provider(msgspec.Struct, frozen=True, kw_only=True):
    """A provider named in a claim (referring, rendering, attending): a person unless ``organization``."""

    npi: str
    last: str  # or the organisation name
    first: str | None = None
    middle: str | None = None
    organization: bool = False
    taxonomy: str | None = None  # PRV03 where the loop carries one


def write_nm1(
    body: TransactionWriter,
    entity: str,
    name: PersonName | Provider,
    qualifier: str | None = None,
    identifier: str | None = None,
) -> None:
    """NM1 of a person (NM102 1: last, first, middle, suffix) or of an organization (NM102 2, a ``Provider``
    marked so: its name alone), names cleaned and cut to the guides' lengths."""
    delimiters = body.delimiters
    last = text(name.last, delimiters, max_length=60)
    if isinstance(name, Provider) and name.organization:
        body.segment("NM1", entity, "2", last, None, None, None, None, qualifier, identifier)
        return
    body.segment(
        "NM1",
        entity,
        "1",
        last,
        text(name.first, delimiters, max_length=35),
        text(name.middle, delimiters, max_length=25),
        None,
        text(name.suffix if isinstance(name, PersonName) else None, delimiters, max_length=10),
        qualifier,
        identifier,
    )


def n3_n4(body: TransactionWriter, address: Address) -> None:
    """Write N3 and N4 (N3 line two only when there is one)."""
    delimiters = body.delimiters
    body.segment("N3", text(address.line1, delimiters, max_length=55), text(address.line2, delimiters))
    body.segment("N4", text(address.city, delimiters, max_length=30), address.state, address.postal_code)


def read_address(n3: Segment | None, n4: Segment | None) -> Address | None:
    if n3 is None or n4 is None:
        return None
    return Address(line1=n3[1], line2=n3[2] or None, city=n4[1], state=n4[2], postal_code=n4[3])


def sex_code(raw: str, segment: Segment, position: int) -> str:
    """DMG03: F, M or U."""
    if raw not in ("F", "M", "U"):
        raise X12Error(
            "sex code must be F, M or U", segment_id=segment.id, element=position, position=segment.index
        )
    return raw


def d8(value: date) -> str:
    return value.strftime("%Y%m%d")


def required(segment: Segment, position: int, what: str) -> str:
    """Element ``position``, refused when empty (the message names the element, never a value)."""
    value = segment[position]
    if not value:
        raise X12Error(
            f"{what} is required",
            segment_id=segment.id,
            element=position,
            position=segment.index,
            offset=segment.offset,
        )
    return value


def missing(segment_id: str, what: str, near: Segment | None = None) -> X12Error:
    return X12Error(
        f"{what}: segment {segment_id} is required",
        segment_id=segment_id,
        position=near.index if near is not None else None,
    )


def envelope_of(transaction: Transaction) -> Envelope:
    """The envelope a transaction set was written in (what the writers take back)."""
    isa = transaction.interchange
    gs = transaction.group
    try:
        created = datetime.strptime(gs.date + gs.time[:4], "%Y%m%d%H%M")
        return Envelope(
            sender_qualifier=isa.sender_qualifier,
            sender_id=isa.sender_id,
            receiver_qualifier=isa.receiver_qualifier,
            receiver_id=isa.receiver_id,
            interchange_control_number=int(isa.control_number),
            group_control_number=int(gs.control_number),
            created=created,
            usage=isa.usage,
        )
    except ValueError:
        raise X12Error(
            "interchange or group header dates or control numbers are not numeric", segment_id="GS"
        ) from None
