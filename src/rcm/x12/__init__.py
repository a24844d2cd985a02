"""X12 5010: segments, envelopes, readers and writers of the transaction sets we exchange. No database.

``transactions(source)`` streams a file's transaction sets; ``InterchangeWriter`` writes one interchange with
its envelopes and counts; ``rcm.x12.kinds`` lists the typed reader and guide checks of each kind.
"""

from __future__ import annotations

from rcm.x12.envelope import GroupHeader, InterchangeHeader, Transaction, TransactionHeader, transactions
from rcm.x12.errors import X12Error
from rcm.x12.segments import DEFAULT_DELIMITERS, Delimiters, Segment, SegmentReader
from rcm.x12.writer import GroupWriter, InterchangeWriter, Party, TransactionWriter, amount, text

__all__ = [
    "DEFAULT_DELIMITERS",
    "Delimiters",
    "GroupHeader",
    "GroupWriter",
    "InterchangeHeader",
    "InterchangeWriter",
    "Party",
    "Segment",
    "SegmentReader",
    "Transaction",
    "TransactionHeader",
    "TransactionWriter",
    "X12Error",
    "amount",
    "text",
    "transactions",
]
