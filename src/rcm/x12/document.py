"""A whole file as JSON-ready data, and its validation: what ``rcm x12 parse`` and ``rcm x12 validate`` print.

Transactions with a typed reader (``rcm.x12.kinds``) appear as that reader's result: claims, amounts, loops.
The others appear as their segments. Readers are looked up by transaction kind (837P, 835, 999, 277CA...).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import msgspec

from rcm.x12.envelope import GroupHeader, InterchangeHeader, Transaction, transactions
from rcm.x12.errors import X12Error

# kind -> function reading one transaction set into a typed result (a msgspec Struct). Each transaction
# module adds itself here; ``rcm x12 parse`` falls back to the bare segments for kinds without one.
Reader = Callable[[Transaction], Any]


def readers() -> dict[str, Reader]:
    from rcm.x12 import kinds as known

    return known.READERS


def _interchange_json(header: InterchangeHeader) -> dict[str, Any]:
    return {
        "sender": {"qualifier": header.sender_qualifier, "id": header.sender_id},
        "receiver": {"qualifier": header.receiver_qualifier, "id": header.receiver_id},
        "date": header.date,
        "time": header.time,
        "version": header.version,
        "control_number": header.control_number,
        "acknowledgment_requested": header.acknowledgment_requested,
        "usage": header.usage,
        "groups": [],
    }


def _group_json(header: GroupHeader) -> dict[str, Any]:
    return {
        "functional_id": header.functional_id,
        "sender": header.sender,
        "receiver": header.receiver,
        "date": header.date,
        "time": header.time,
        "control_number": header.control_number,
        "version": header.version,
        "transactions": [],
    }


def describe(source: bytes | str | BinaryIO, *, encoding: str = "utf-8") -> dict[str, Any]:
    """The file as nested interchanges, groups and transaction sets, each read by its typed reader."""
    known = readers()
    interchanges: list[dict[str, Any]] = []
    current_isa: InterchangeHeader | None = None
    current_gs: GroupHeader | None = None
    for transaction in transactions(source, encoding=encoding):
        if transaction.interchange is not current_isa:
            current_isa = transaction.interchange
            interchanges.append(_interchange_json(current_isa))
            current_gs = None
        if transaction.group is not current_gs:
            current_gs = transaction.group
            interchanges[-1]["groups"].append(_group_json(current_gs))
        reader = known.get(transaction.kind)
        entry: dict[str, Any] = {
            "transaction_set": transaction.header.transaction_set,
            "kind": transaction.kind,
            "control_number": transaction.header.control_number,
            "implementation": transaction.header.implementation,
        }
        if reader is not None:
            entry["content"] = msgspec.to_builtins(reader(transaction))
        else:
            entry["segments"] = [segment.elements for segment in transaction]
        interchanges[-1]["groups"][-1]["transactions"].append(entry)
    return {"interchanges": interchanges}


@dataclass(frozen=True, slots=True)
class Finding:
    """One validation finding: which segment, where, what is wrong (never the value: it can be PHI)."""

    segment_id: str | None
    position: int | None
    element: int | None
    message: str

    def __str__(self) -> str:
        return X12Error(
            self.message, segment_id=self.segment_id, position=self.position, element=self.element
        ).describe()


# kind -> function checking one transaction set against its guide's rules, yielding findings.
Validator = Callable[[Transaction], Iterator[Finding]]


def validators() -> dict[str, Validator]:
    from rcm.x12 import kinds as known

    return known.VALIDATORS


def validate(source: bytes | str | BinaryIO, *, encoding: str = "utf-8") -> list[Finding]:
    """Every finding in the file; a structural break (envelope, counts, truncation) ends the list."""
    findings: list[Finding] = []
    known_validators = validators()
    known_readers = readers()
    try:
        for transaction in transactions(source, encoding=encoding):
            check = known_validators.get(transaction.kind)
            if check is not None:
                findings.extend(check(transaction))
                continue
            reader = known_readers.get(transaction.kind)
            if reader is not None:
                reader(transaction)
    except X12Error as exc:
        findings.append(Finding(exc.segment_id, exc.position, exc.element, exc.message))
    return findings
