"""The transaction sets we read and check, by kind: one line per transaction module.

Each module under ``rcm.x12`` that reads a transaction set (``read(transaction)``) or checks it against its
implementation guide (``check(transaction)``) is listed here, so the CLI and the services find them without
import side effects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rcm.x12 import (
    acknowledgment,
    benefits,
    claim_ack,
    claim_status,
    claim_status_request,
    claims837_check,
    claims837_read,
    eligibility,
    remittance,
)

if TYPE_CHECKING:
    from rcm.x12.document import Reader, Validator

READERS: dict[str, Reader] = {
    "835": remittance.read,
    "999": acknowledgment.read,
    "277CA": claim_ack.read,
    "277": claim_status.read,
    "837P": claims837_read.read,
    "837I": claims837_read.read,
    "270": eligibility.read_270,
    "271": benefits.read_271,
    "276": claim_status_request.read_276,
}
VALIDATORS: dict[str, Validator] = {
    "835": remittance.check,
    "999": acknowledgment.check,
    "277CA": claim_ack.check,
    "277": claim_status.check,
    "837P": claims837_check.check,
    "837I": claims837_check.check,
    "270": eligibility.check_270,
    "271": benefits.check_271,
    "276": claim_status_request.check_276,
}
