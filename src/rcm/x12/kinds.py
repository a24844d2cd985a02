"""The transaction sets we read and check, by kind: one line per transaction module.

Each module under ``rcm.x12`` that reads a transaction set (``read(transaction)``) or checks it against its
implementation guide (``check(transaction)``) is listed here, so the CLI and the services find them without
import side effects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rcm.x12 import acknowledgment, claim_ack, claim_status, remittance

if TYPE_CHECKING:
    from rcm.x12.document import Reader, Validator

READERS: dict[str, Reader] = {
    "835": remittance.read,
    "999": acknowledgment.read,
    "277CA": claim_ack.read,
    "277": claim_status.read,
}
VALIDATORS: dict[str, Validator] = {
    "835": remittance.check,
    "999": acknowledgment.check,
    "277CA": claim_ack.check,
    "277": claim_status.check,
}
