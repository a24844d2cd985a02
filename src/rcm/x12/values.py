"""Element values read strictly: money to integer cents, dates, quantities. Bad values name their element.

X12 money is the R (decimal) type: an optional minus, digits, at most one point. ``12.5`` is 1250 cents;
``12.345`` has sub-cent precision no ledger can hold and is refused rather than rounded.
"""

from __future__ import annotations

import re
from datetime import date

from rcm.x12.errors import X12Error
from rcm.x12.segments import Segment

_DECIMAL = re.compile(r"(-?)(\d*)(?:\.(\d*))?\Z")


def _error(segment: Segment, position: int, message: str) -> X12Error:
    return X12Error(
        message, segment_id=segment.id, element=position, position=segment.index, offset=segment.offset
    )


def required(segment: Segment, position: int) -> str:
    """Element ``position`` as its text; an empty or missing element is refused, naming the element."""
    elements = segment.elements
    value = elements[position] if position < len(elements) else ""
    if not value:
        raise _error(segment, position, "element is required")
    return value


def cents(segment: Segment, position: int, *, required: bool = True) -> int | None:
    """Element ``position`` of ``segment`` as integer cents; empty gives None unless required."""
    elements = segment.elements
    raw = elements[position] if position < len(elements) else ""
    if not raw:
        if required:
            raise _error(segment, position, "amount is required")
        return None
    # Fast paths for the common shapes (125, 125.5, -125.50), ASCII digits only; anything else takes the
    # regex. Whole dollars come first: writers drop ".00".
    if raw.isdigit() and raw.isascii():
        return int(raw) * 100
    whole, _point, fraction = raw.partition(".")
    negative = whole.startswith("-")
    if negative:
        whole = whole[1:]
    if (
        raw.isascii()
        and (whole.isdigit() or (not whole and fraction))
        and (fraction.isdigit() or not fraction)
        and (whole or fraction)
        and len(fraction) <= 2
    ):
        value = int(whole or "0") * 100 + (int(fraction.ljust(2, "0")) if fraction else 0)
        return -value if negative else value
    found = _DECIMAL.match(raw)
    if found is None or not (found.group(2) or found.group(3)):
        raise _error(segment, position, "not a decimal amount")
    sign, whole, fraction = found.group(1), found.group(2) or "0", (found.group(3) or "").rstrip("0")
    if len(fraction) > 2:
        raise _error(segment, position, "amount has more than two decimal places")
    value = int(whole) * 100 + int(fraction.ljust(2, "0"))
    return -value if sign else value


def required_cents(segment: Segment, position: int) -> int:
    value = cents(segment, position, required=True)
    assert value is not None
    return value


def quantity(segment: Segment, position: int) -> str | None:
    """A quantity (units, days) kept as its decimal text: units may be fractional (0.5 hour); not money."""
    raw = segment[position]
    if not raw:
        return None
    if _DECIMAL.match(raw) is None or raw in ("-", ".", "-."):
        raise _error(segment, position, "not a decimal quantity")
    return raw


def date8(segment: Segment, position: int, *, required: bool = True) -> date | None:
    """A CCYYMMDD date (format D8)."""
    raw = segment[position]
    if not raw:
        if required:
            raise _error(segment, position, "date is required")
        return None
    return _calendar(raw, segment, position)


# Dates read, by their text: a file's dates repeat (one payment date, a few dates of service per claim), and
# a dict lookup is a fraction of the checks and the conversion. Bounded: emptied when it fills.
_DATES: dict[str, date] = {}
_DATES_KEPT = 4096


def _calendar(raw: str, segment: Segment, position: int) -> date:
    found = _DATES.get(raw)
    if found is not None:
        return found
    if len(raw) != 8 or not raw.isdigit() or not raw.isascii():
        raise _error(segment, position, "not a CCYYMMDD date")
    try:
        # Eight ASCII digits are ISO 8601's basic calendar form, which fromisoformat reads in C (3.11+).
        found = date.fromisoformat(raw)
    except ValueError:
        raise _error(segment, position, "not a calendar date") from None
    if len(_DATES) >= _DATES_KEPT:
        _DATES.clear()
    _DATES[raw] = found
    return found


def period(segment: Segment, qualifier_position: int, value_position: int) -> tuple[date, date]:
    """A date or range: qualifier D8 (one date) or RD8 (CCYYMMDD-CCYYMMDD), as DTP and DTM carry them."""
    qualifier = segment[qualifier_position]
    raw = segment[value_position]
    if qualifier == "D8":
        single = date8(segment, value_position)
        assert single is not None
        return single, single
    if qualifier == "RD8" and len(raw) == 17 and raw[8] == "-":
        start = _calendar(raw[:8], segment, value_position)
        end = _calendar(raw[9:], segment, value_position)
        if end < start:
            raise _error(segment, value_position, "date range ends before it starts")
        return start, end
    raise _error(segment, value_position, "not a D8 date or RD8 date range")
