"""The 837P/837I guide rules we check ourselves (``rcm x12 validate``): what a payer's front end rejects.

Required loops and segments (submitter, receiver, billing provider with its NPI and tax id, subscriber with
SBR, subscriber and payer names, patient with PAT, claims with HI and service lines, a date on every
professional line, statement dates and an attending provider on institutional claims), the HL tree (numbers
in order, parents that exist, levels under the right parent), the NPI check digit of every NM1 under XX,
diagnosis pointers within the claim's diagnoses, line charges summing to CLM02 and replacements and voids
(frequency 7, 8) carrying the payer's claim control number (REF*F8). Findings name segment and position only.
"""

from __future__ import annotations

from collections.abc import Iterator

from rcm.x12.document import Finding
from rcm.x12.envelope import Transaction
from rcm.x12.errors import X12Error
from rcm.x12.npi import npi_check_digit_valid
from rcm.x12.segments import Segment
from rcm.x12.values import cents

_PARENT_LEVEL = {"20": None, "22": "20", "23": "22"}
# What each HL level must hold before the next HL (or the end): NM1 entity codes, and other segments.
_LOOP_NEEDS = {"20": ("85",), "22": ("IL", "PR"), "23": ("QC",)}
_DIAGNOSES = ("ABK", "ABF", "BK", "BF")


def _finding(
    segment: Segment | None, message: str, element: int | None = None, segment_id: str | None = None
) -> Finding:
    return Finding(
        segment_id or (segment.id if segment is not None else None),
        segment.index if segment is not None else None,
        element,
        message,
    )


class _Claim:
    def __init__(self, clm: Segment, institutional: bool) -> None:
        self.clm = clm
        self.institutional = institutional
        self.diagnoses = 0
        self.line_total = 0
        self.lines = 0
        self.has_f8 = False
        self.has_statement = False
        self.has_attending = False
        self.pointers: list[tuple[Segment, int]] = []
        self.line: Segment | None = None  # the open LX
        self.line_service = False
        self.line_date = False


class _Check:
    def __init__(self, transaction: Transaction) -> None:
        self.component = transaction.delimiters.component
        self.institutional = transaction.kind == "837I"
        self.header: set[str] = set()
        self.hl_levels: dict[str, str] = {}
        self.last_hl = 0
        self.level: str | None = None
        self.level_segment: Segment | None = None
        self.level_seen: set[str] = set()
        self.claim: _Claim | None = None

    def segment(self, segment: Segment) -> Iterator[Finding]:
        sid = segment.id
        if sid == "HL":
            yield from self.close_claim()
            yield from self.close_level()
            yield from self.hl(segment)
        elif sid == "NM1":
            yield from self.nm1(segment)
        elif sid == "CLM":
            yield from self.close_claim()
            self.claim = _Claim(segment, self.institutional)
        elif sid in ("BHT", "SBR", "PAT", "REF", "DMG", "N3") and self.claim is None:
            self.level_seen.add(sid if sid != "REF" else "REF" + segment[1])
            self.header.add(sid)
        elif self.claim is not None:
            yield from self.claim_segment(segment)

    def hl(self, segment: Segment) -> Iterator[Finding]:
        number, parent, level = segment[1], segment[2], segment[3]
        if not number.isdigit() or int(number) != self.last_hl + 1:
            yield _finding(segment, "HL01 does not follow the previous HL's number", 1)
        self.last_hl = int(number) if number.isdigit() else self.last_hl + 1
        if level not in _PARENT_LEVEL:
            yield _finding(segment, "HL03 is not 20, 22 or 23", 3)
        elif _PARENT_LEVEL[level] is None:
            if parent:
                yield _finding(segment, "a billing provider HL has no parent", 2)
        elif self.hl_levels.get(parent) != _PARENT_LEVEL[level]:
            yield _finding(segment, "HL02 does not name a parent of the level above", 2)
        self.hl_levels[number] = level
        self.level, self.level_segment, self.level_seen = level, segment, set()

    def close_level(self) -> Iterator[Finding]:
        if self.level is None:
            return
        for entity in _LOOP_NEEDS.get(self.level, ()):
            if "NM1" + entity not in self.level_seen:
                yield _finding(self.level_segment, f"the loop has no NM1*{entity}", segment_id="HL")
        if self.level == "20" and "REFEI" not in self.level_seen:
            yield _finding(self.level_segment, "the billing provider has no tax id (REF*EI)", segment_id="HL")
        if self.level == "22" and "SBR" not in self.level_seen:
            yield _finding(self.level_segment, "the subscriber loop has no SBR", segment_id="HL")
        patient_is_subscriber = (
            self.level == "22" and self.level_segment is not None and self.level_segment[4] == "0"
        )
        if patient_is_subscriber and not {"N3", "DMG"} <= self.level_seen:
            yield _finding(
                self.level_segment,
                "the subscriber is the patient: address and DMG are required",
                segment_id="HL",
            )
        if self.level == "23" and "PAT" not in self.level_seen:
            yield _finding(self.level_segment, "the patient loop has no PAT", segment_id="HL")

    def nm1(self, segment: Segment) -> Iterator[Finding]:
        if segment[8] == "XX" and not npi_check_digit_valid(segment[9]):
            yield _finding(segment, "NPI fails its check digit", 9)
        if self.claim is None:
            self.level_seen.add("NM1" + segment[1])
            self.header.add("NM1" + segment[1])
        elif segment[1] == "71":
            self.claim.has_attending = True

    def claim_segment(self, segment: Segment) -> Iterator[Finding]:
        claim = self.claim
        assert claim is not None
        sid = segment.id
        if sid == "REF" and segment[1] == "F8":
            claim.has_f8 = True
        elif sid == "HI":
            for position in range(1, len(segment) + 1):
                if segment.components(position, self.component)[0] in _DIAGNOSES:
                    claim.diagnoses += 1
        elif sid == "DTP" and segment[1] == "434" and claim.line is None:
            claim.has_statement = True
        elif sid == "LX":
            yield from self.close_line()
            claim.line, claim.lines = segment, claim.lines + 1
        elif sid in ("SV1", "SV2") and claim.line is not None:
            claim.line_service = True
            try:
                claim.line_total += cents(segment, 2 if sid == "SV1" else 3) or 0
            except X12Error as exc:
                yield Finding(sid, segment.index, exc.element, exc.message)
            if sid == "SV1":
                for raw in segment.components(7, self.component):
                    if raw:
                        claim.pointers.append((segment, int(raw) if raw.isdigit() else 0))
        elif sid == "DTP" and segment[1] == "472" and claim.line is not None:
            claim.line_date = True

    def close_line(self) -> Iterator[Finding]:
        claim = self.claim
        if claim is None or claim.line is None:
            return
        if not claim.line_service:
            yield _finding(claim.line, "the service line has no SV1/SV2")
        elif not claim.institutional and not claim.line_date:
            yield _finding(claim.line, "the professional service line has no date of service (DTP*472)")
        claim.line, claim.line_service, claim.line_date = None, False, False

    def close_claim(self) -> Iterator[Finding]:
        claim = self.claim
        if claim is None:
            return
        yield from self.close_line()
        self.claim = None
        clm = claim.clm
        if not claim.diagnoses:
            yield _finding(clm, "the claim has no diagnosis (HI*ABK)", segment_id="CLM")
        if not claim.lines:
            yield _finding(clm, "the claim has no service line (LX)", segment_id="CLM")
        try:
            total = cents(clm, 2)
        except X12Error as exc:
            yield Finding("CLM", clm.index, exc.element, exc.message)
        else:
            if claim.lines and total != claim.line_total:
                yield _finding(clm, "line charges do not sum to the claim total", 2)
        frequency = clm.components(5, self.component)
        if len(frequency) > 2 and frequency[2] in ("7", "8") and not claim.has_f8:
            yield _finding(clm, "a replacement or void claim needs the payer's claim number (REF*F8)", 5)
        for segment, pointer in claim.pointers:
            if not 1 <= pointer <= claim.diagnoses:
                yield _finding(segment, "diagnosis pointer outside the claim's diagnoses", 7)
        if claim.institutional:
            if not claim.has_statement:
                yield _finding(clm, "the institutional claim has no statement dates (DTP*434)")
            if not claim.has_attending:
                yield _finding(clm, "the institutional claim has no attending provider (NM1*71)")


def check(transaction: Transaction) -> Iterator[Finding]:
    state = _Check(transaction)
    for segment in transaction:
        yield from state.segment(segment)
    yield from state.close_claim()
    yield from state.close_level()
    for needed, what in (("BHT", "BHT"), ("NM141", "submitter NM1*41"), ("NM140", "receiver NM1*40")):
        if needed not in state.header:
            yield _finding(transaction.st, f"the transaction set has no {what}", segment_id="ST")
    if not state.hl_levels:
        yield _finding(transaction.st, "the transaction set has no billing provider (HL*20)", segment_id="ST")
