"""The settings a saved view may hold, per report: an allow-list of names, each with the values it takes.

A view's parameters become the query string of the page that reopens it, so each value is checked here as
the page would check it; anything else (an unknown name, a value out of range, PHI typed into a field) is
refused with 422 naming the parameter, never echoing the value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from rcm.dashboard.models import ReportName
from rcm.kit.errors import FieldError, InvalidInput

MAX_PARAMETERS = 16


@dataclass(frozen=True)
class Allowed:
    """What one parameter takes: one of ``choices``, or a string matching ``pattern``, or an ISO date."""

    choices: frozenset[str] = frozenset()
    pattern: re.Pattern[str] | None = None
    is_date: bool = False

    def accepts(self, value: str) -> bool:
        if self.choices:
            return value in self.choices
        if self.is_date:
            try:
                date.fromisoformat(value)
            except ValueError:
                return False
            return len(value) == 10
        return self.pattern is not None and self.pattern.fullmatch(value) is not None


GRAIN = Allowed(choices=frozenset({"day", "week", "month"}))
GROUP_BY = Allowed(choices=frozenset({"none", "payer", "provider", "cpt", "location"}))
DATE = Allowed(is_date=True)
BASIS = Allowed(choices=frozenset({"service_date", "submission_date"}))
COMPARE = Allowed(choices=frozenset({"none", "previous_period", "previous_year"}))
PAYER = Allowed(pattern=re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}"))
CODE = Allowed(pattern=re.compile(r"[A-Za-z0-9]{1,10}"))
ID = Allowed(pattern=re.compile(r"[0-9a-fA-F-]{36}"))
STATUS = Allowed(pattern=re.compile(r"[a-z_]{1,20}(,[a-z_]{1,20}){0,10}"))
BUCKET = Allowed(choices=frozenset({"0-30", "31-60", "61-90", "91-120", "120+"}))
KIND = Allowed(choices=frozenset({"charges", "payments", "adjustments", "refunds"}))
METRIC = Allowed(pattern=re.compile(r"[a-z_]{1,40}"))
PAGE_SIZE = Allowed(choices=frozenset({"25", "50", "100"}))

_PERIOD = {"since": DATE, "until": DATE}
_DASHBOARD = {**_PERIOD, "grain": GRAIN, "group_by": GROUP_BY, "basis": BASIS, "compare": COMPARE}

ALLOWED: Mapping[ReportName, Mapping[str, Allowed]] = {
    ReportName.DASHBOARD: _DASHBOARD,
    ReportName.CASH_FLOW: {**_PERIOD, "grain": GRAIN, "group_by": GROUP_BY, "compare": COMPARE},
    ReportName.AR_AGING: {"basis": BASIS, "group_by": GROUP_BY, "as_of": DATE},
    ReportName.KPIS: {**_PERIOD, "compare": COMPARE, "payer": PAYER},
    ReportName.CLAIMS: {
        **_PERIOD,
        "kind": KIND,
        "payer": PAYER,
        "provider": ID,
        "cpt": CODE,
        "location": Allowed(pattern=re.compile(r"[A-Za-z0-9 ._-]{1,40}")),
        "status": STATUS,
        "bucket": BUCKET,
        "basis": BASIS,
        "metric": METRIC,
        "page_size": PAGE_SIZE,
    },
}


def check(report: ReportName, parameters: Mapping[str, object]) -> dict[str, str]:
    """``parameters`` as the view will keep them (strings only), or 422 naming each refused parameter."""
    allowed = ALLOWED[report]
    problems: list[FieldError] = []
    if len(parameters) > MAX_PARAMETERS:
        problems.append(FieldError("/parameters", f"at most {MAX_PARAMETERS} parameters"))
    kept: dict[str, str] = {}
    for name, value in parameters.items():
        rule = allowed.get(name)
        if rule is None:
            # The pointer stops at the object: an unknown name is input, and input is never echoed.
            problems.append(FieldError("/parameters", f"names a parameter the {report.value} report lacks"))
        elif not isinstance(value, str) or not rule.accepts(value):
            problems.append(FieldError(f"/parameters/{name}", "is not a value this parameter takes"))
        else:
            kept[name] = value
    if problems:
        raise InvalidInput("The view's parameters are not all allowed.", errors=problems)
    return kept
