"""The transaction sets we read and check, by kind: one line per transaction module.

Each module under ``rcm.x12`` that reads a transaction set (``read(transaction)``) or checks it against its
implementation guide (``check(transaction)``) is listed here, so the CLI and the services find them without
import side effects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rcm.x12 import claims837_check, claims837_read

if TYPE_CHECKING:
    from rcm.x12.document import Reader, Validator

READERS: dict[str, Reader] = {
    "837P": claims837_read.read,
    "837I": claims837_read.read,
}
VALIDATORS: dict[str, Validator] = {
    "837P": claims837_check.check,
    "837I": claims837_check.check,
}
