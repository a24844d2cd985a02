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
from rcm.reporting.kpi_vocabulary import KpiKey

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
# A payer id of the directory, 'patient', a provider id, a CPT/HCPCS code or a location name: a group key.
KEY = Allowed(pattern=re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,59}"))
SET = Allowed(choices=frozenset({"entries", "open", "kpi"}))
BUCKET = Allowed(choices=frozenset({"0-30", "31-60", "61-90", "91-120", "120+", "unsubmitted", "91+"}))
KIND = Allowed(
    choices=frozenset(
        {
            "charge",
            "payment",
            "patient_payment",
            "refund",
            "adjustment",
            "interest",
            "provider_adjustment",
            "unapplied",
        }
    )
)
CAS_GROUP = Allowed(choices=frozenset({"CO", "OA", "PI", "PR", "CR"}))
KPI = Allowed(choices=frozenset(k.value for k in KpiKey))
YES = Allowed(choices=frozenset({"true", "false"}))
LIMIT = Allowed(choices=frozenset({"25", "50", "100"}))

_PERIOD = {"date_from": DATE, "date_to": DATE}

ALLOWED: Mapping[ReportName, Mapping[str, Allowed]] = {
    # The page's own form: the period (cash flow and KPIs), grain, grouping, and the AR aging's basis.
    ReportName.DASHBOARD: {**_PERIOD, "grain": GRAIN, "group_by": GROUP_BY, "basis": BASIS},
    ReportName.CASH_FLOW: {**_PERIOD, "grain": GRAIN, "group_by": GROUP_BY},
    ReportName.AR_AGING: {"as_of": DATE, "basis": BASIS},
    ReportName.KPIS: dict(_PERIOD),
    # A drill-down list: which claims, and the figure's cell.
    ReportName.CLAIMS: {
        "set": SET,
        **_PERIOD,
        "kind": KIND,
        "adjustment_group": CAS_GROUP,
        "group_by": GROUP_BY,
        "group": KEY,
        "as_of": DATE,
        "basis": BASIS,
        "bucket": BUCKET,
        "payer": KEY,
        "period_from": DATE,
        "period_to": DATE,
        "key": KPI,
        "numerator": YES,
        "limit": LIMIT,
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
