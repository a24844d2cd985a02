"""What the codes of a 999 and a 277CA mean, in words a biller reads on a rejection: the X12 code lists'
descriptions for the codes that come back in practice. A code not listed here is shown as it came.

Everything here is code-list text, never anything read from a file beside the code: the 999's copy of the
bad element (IK404) and the 277CA's free text (STC12) can carry PHI, and neither is kept.
"""

from __future__ import annotations

from collections.abc import Iterable

from rcm.x12.acknowledgment import SegmentError, SetResponse
from rcm.x12.statuses import Status

# IK501 / AK901: transaction set and functional group acknowledgment codes.
ACKNOWLEDGMENT = {
    "A": "Accepted",
    "E": "Accepted but errors were noted",
    "M": "Rejected, message authentication code (MAC) failed",
    "P": "Partially accepted",
    "R": "Rejected",
    "W": "Rejected, assurance failed validity tests",
    "X": "Rejected, content after decryption could not be analyzed",
}
# IK502-06: transaction set syntax error codes.
SET_ERRORS = {
    "1": "Transaction set not supported",
    "2": "Transaction set trailer missing",
    "3": "Transaction set control number in header and trailer do not match",
    "4": "Number of included segments does not match actual count",
    "5": "One or more segments in error",
    "6": "Missing or invalid transaction set identifier",
    "7": "Missing or invalid transaction set control number",
    "18": "Transaction set not in functional group",
    "19": "Invalid transaction set implementation convention reference",
    "23": "Transaction set control number not unique within the functional group",
    "I5": "Implementation one or more segments in error",
    "I6": "Implementation convention not supported",
}
# IK304: segment syntax error codes.
SEGMENT_ERRORS = {
    "1": "Unrecognized segment ID",
    "2": "Unexpected segment",
    "3": "Required segment missing",
    "4": "Loop occurs over maximum times",
    "5": "Segment exceeds maximum use",
    "6": "Segment not in defined transaction set",
    "7": "Segment not in proper sequence",
    "8": "Segment has data element errors",
    "I4": "Implementation 'not used' segment present",
    "I6": "Implementation dependent segment missing",
    "I7": "Implementation loop occurs under minimum times",
    "I8": "Implementation segment below minimum use",
    "I9": "Implementation dependent 'not used' segment present",
}
# IK403: element syntax error codes.
ELEMENT_ERRORS = {
    "1": "Required data element missing",
    "2": "Conditional required data element missing",
    "3": "Too many data elements",
    "4": "Data element too short",
    "5": "Data element too long",
    "6": "Invalid character in data element",
    "7": "Invalid code value",
    "8": "Invalid date",
    "9": "Invalid time",
    "10": "Exclusion condition violated",
    "12": "Too many repetitions",
    "13": "Too many components",
    "I10": "Implementation 'not used' data element present",
    "I11": "Implementation too few repetitions",
    "I12": "Implementation pattern match failure",
    "I13": "Implementation dependent 'not used' data element present",
    "I6": "Code value not used in implementation",
    "I9": "Implementation dependent data element missing",
}
# STC01-1: claim status category codes of the acknowledgment family (A0-A8) and the common others.
STATUS_CATEGORIES = {
    "A0": "Acknowledgement/Forwarded",
    "A1": "Acknowledgement/Receipt",
    "A2": "Acknowledgement/Acceptance into adjudication system",
    "A3": "Acknowledgement/Returned as unprocessable claim",
    "A4": "Acknowledgement/Not found",
    "A5": "Acknowledgement/Split claim",
    "A6": "Acknowledgement/Rejected for missing information",
    "A7": "Acknowledgement/Rejected for invalid information",
    "A8": "Acknowledgement/Rejected for relational field in error",
    "E0": "Response not possible - error on submitted request data",
    "E1": "Response not possible - system status",
    "F1": "Finalized/Payment",
    "F2": "Finalized/Denial",
    "P1": "Pending/In process",
}
# STC01-2: claim status codes a 277CA or a 277 commonly carries.
STATUS_CODES = {
    "0": "Cannot provide further status electronically",
    "1": "For more detailed information, see remittance advice",
    "2": "More detailed information in letter",
    "3": "Claim has been adjudicated and is awaiting payment cycle",
    "16": "Claim/encounter has been forwarded to entity",
    "19": "Entity acknowledges receipt of claim/encounter",
    "20": "Accepted for processing",
    "21": "Missing or invalid information",
    "23": "Returned to entity",
    "24": "Entity not approved as an electronic submitter",
    "25": "Entity not approved",
    "26": "Entity not found",
    "27": "Policy canceled",
    "28": "Claim submitted to wrong payer",
    "29": "Subscriber and policy number/contract number mismatched",
    "30": "Subscriber and subscriber id mismatched",
    "31": "Subscriber and policyholder name mismatched",
    "32": "Subscriber and policy number/contract number not found",
    "33": "Subscriber and subscriber id not found",
    "34": "Subscriber and policyholder name not found",
    "35": "Claim/encounter not found",
    "65": "Claim/line has been paid",
    "562": "Entity's National Provider Identifier (NPI)",
}
# STC01-3: entity identifier codes a status names (whose information is in error).
ENTITIES = {
    "03": "Dependent",
    "1P": "Provider",
    "40": "Receiver",
    "41": "Submitter",
    "77": "Service location",
    "82": "Rendering provider",
    "85": "Billing provider",
    "DK": "Ordering physician",
    "DN": "Referring provider",
    "IL": "Insured or subscriber",
    "PR": "Payer",
    "QC": "Patient",
}


def _named(code: str, table: dict[str, str]) -> str:
    described = table.get(code)
    return f"{code} {described}" if described else code


def set_rejection(response: SetResponse) -> str:
    """A rejected set's 999 verdict in words: the IK5 code and its syntax errors, then each IK3 segment
    error (segment, position, loop, code) with its IK4 element errors (position, reference, code)."""
    parts = [f"999 {_named(response.status, ACKNOWLEDGMENT)}"]
    parts.extend(_named(code, SET_ERRORS) for code in response.codes)
    parts.extend(_segment(error) for error in response.segment_errors)
    return "; ".join(parts)


def group_rejection(status: str, codes: Iterable[str]) -> str:
    """A functional group rejected whole (AK9, no set-level verdict for ours)."""
    return "; ".join([f"999 group {_named(status, ACKNOWLEDGMENT)}", *(f"AK9 code {code}" for code in codes)])


def _segment(error: SegmentError) -> str:
    where = f"{error.segment_id} at {error.position}" + (f" in loop {error.loop}" if error.loop else "")
    text = where + (f": {_named(error.code, SEGMENT_ERRORS)}" if error.code else "")
    for element in error.elements:
        reference = f" (element {element.reference})" if element.reference else ""
        named = _named(element.code, ELEMENT_ERRORS)
        text += f"; {error.segment_id}{element.position:02d}{reference}: {named}"
    return text


def status_text(statuses: Iterable[Status], *, accepted: bool = False, kind: str = "277CA") -> str:
    """A 277CA (or 277) claim's statuses in words: each STC01/10/11 composite as category, status code
    and entity."""
    parts: list[str] = []
    for found in statuses:
        for code in found.codes:
            text = f"{kind} {_named(code.category, STATUS_CATEGORIES)}: {_named(code.code, STATUS_CODES)}"
            if code.entity:
                text += f" ({_named(code.entity, ENTITIES)})"
            parts.append(text)
    return "; ".join(parts) or (f"{kind} accepted" if accepted else f"{kind} rejected without a status")
