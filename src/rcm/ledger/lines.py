"""Which claim lines an 835 service line (SVC) pays, and how its amounts are shared among them.

Each SVC is matched, in turn, to the claim lines as built (``BilledLine``), each taken once unless split:
1. by REF*6R, the line item control number our 837 sent (our line number);
2. an SVC naming the billed procedure in SVC06 (the payer adjudicated another code): the free line with
   that procedure on that date whose charge is the SVC's (a code changed); else, when the SVC charges
   more, that line and the other free lines of the date whose charges add up to the SVC's (bundled: one SVC
   pays several billed lines); else, when it charges less, the line billed with that procedure, shared by
   the SVCs naming it (split: one billed line paid as several SVCs);
3. by procedure, modifiers in any order, and date of service; then with the SVC's modifiers a part of the
   billed ones (the payer dropped one); then by procedure and date alone.
An SVC matching nothing is posted at claim level. A bundled SVC's amounts are shared among its lines in
proportion to their charges, to the cent (``allocate``: the remainder cents go to the first lines).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import date

import msgspec

from rcm.x12.remittance_model import ServiceLine

# (claim line number, weight): the lines one SVC pays, weighted by their charges. Empty: claim level.
LineShare = tuple[tuple[int, int], ...]
# Bundles are looked for among at most this many lines of one date (2^n subsets: kept small).
MAX_BUNDLE = 8


class BilledLine(msgspec.Struct, frozen=True, gc=False):
    """A claim line as built (what an SVC is matched to): one per line of an 835's claims, read in bulk, so a
    Struct (built in C) the collector does not track (strings, ints, a date and a tuple of strings)."""

    line_number: int
    procedure: str
    modifiers: tuple[str, ...]
    service_date: date | object
    charge: int = 0


def allocate(amount: int, share: LineShare) -> list[tuple[int | None, int]]:
    """``amount`` (cents, any sign) over the lines of ``share`` in proportion to their weights, to the cent:
    [(line number, part)]; [(None, amount)] when the share names no line."""
    if not share:
        return [(None, amount)]
    if len(share) == 1:
        return [(share[0][0], amount)]
    total = sum(weight for _, weight in share)
    sign, left = (-1 if amount < 0 else 1), abs(amount)
    if total <= 0:  # no charges to weigh by: evenly
        share = tuple((number, 1) for number, _ in share)
        total = len(share)
    parts = [left * weight // total for _, weight in share]
    for i in range(left - sum(parts)):
        parts[i % len(parts)] += 1
    return [(number, sign * part) for (number, _), part in zip(share, parts, strict=True)]


def match_lines(paid: Sequence[ServiceLine], billed: Sequence[BilledLine]) -> list[LineShare]:
    """The claim lines each SVC pays (see the module's rules); each claim line taken once, except by the
    parts of a split line."""
    lines = {line.line_number: line for line in billed}
    free = dict(lines)
    split: dict[int, int] = {}  # a line paid in parts: charge its parts have taken so far
    found: list[LineShare] = []
    for line in paid:
        share = _by_control(line, free, lines, split)
        if share is None and line.original_code:
            share = _by_original(line, free, lines, split)
        if share is None:
            number = _by_code(line, free, exact=True)
            if number is None:
                number = _by_code(line, free, exact=False)
            if number is None:
                number = _by_code(line, free, exact=None)
            share = ((number, 1),) if number is not None else None
        for number, _ in share or ():
            free.pop(number, None)
        found.append(share or ())
    return found


def _on_date(line: ServiceLine, billed: BilledLine) -> bool:
    return line.service_start is None or billed.service_date == line.service_start


def _by_control(
    line: ServiceLine, free: dict[int, BilledLine], lines: dict[int, BilledLine], split: dict[int, int]
) -> LineShare | None:
    control = line.control_number
    if not (control and control.isdigit()):
        return None
    number = int(control)
    if number in free:
        if line.original_code and line.charge < free[number].charge:
            split[number] = line.charge
        return ((number, 1),)
    if number in split and split[number] + line.charge <= lines[number].charge:  # a split line's next part
        split[number] += line.charge
        return ((number, 1),)
    return None


def _by_original(
    line: ServiceLine, free: dict[int, BilledLine], lines: dict[int, BilledLine], split: dict[int, int]
) -> LineShare | None:
    code, charge = line.original_code, line.charge
    named = [b for b in free.values() if b.procedure == code and _on_date(line, b)]
    for billed in named:
        if billed.charge == charge:  # the code was changed, the line paid whole
            return ((billed.line_number, 1),)
    for billed in named:
        if charge > billed.charge:  # bundled: this line and others of the date, adding up to the SVC
            others = [b for b in free.values() if b is not billed and _on_date(line, b)][: MAX_BUNDLE - 1]
            for size in range(1, len(others) + 1):
                for group in itertools.combinations(others, size):
                    if billed.charge + sum(b.charge for b in group) == charge:
                        return tuple((b.line_number, b.charge) for b in (billed, *group))
    # split: the line billed with that procedure, its parts together within its charge
    for billed in [*named, *(lines[n] for n in split if lines[n].procedure == code)]:
        number = billed.line_number
        taken = split.get(number, 0)
        if charge < billed.charge and taken + charge <= billed.charge and _on_date(line, billed):
            split[number] = taken + charge
            return ((number, 1),)
    return None


def _by_code(line: ServiceLine, free: dict[int, BilledLine], *, exact: bool | None) -> int | None:
    """``exact``: modifiers equal in any order; False: the SVC's a part of the billed ones (one dropped);
    None: not compared."""
    code, modifiers = line.billed_code, set(line.billed_modifiers)
    for number, billed in free.items():
        if billed.procedure != code or not _on_date(line, billed):
            continue
        if exact is True and sorted(billed.modifiers) != sorted(line.billed_modifiers):
            continue
        if exact is False and not modifiers <= set(billed.modifiers):
            continue
        return number
    return None
