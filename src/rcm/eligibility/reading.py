"""What a payer's answer says, as rows to store: a 271 read into a check's status, plan dates and benefits
per service type, or an AAA / 999 refusal read into its reason. Pure: no database, no PHI kept (the member
and names of the 271 are not looked at beyond what the reader needs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from rcm.eligibility.models import CheckStatus, Network
from rcm.x12 import X12Error, transactions
from rcm.x12 import acknowledgment as ack
from rcm.x12.benefits import Answer, Benefit, read_271

# AAA03 reject reasons (X279 2000A/B/C/D, 2100A-D): the ones payers send for a patient-level refusal.
REJECT_REASONS: dict[str, str] = {
    "15": "Required application data missing",
    "41": "Authorization/access restrictions",
    "42": "Unable to respond at current time",
    "43": "Invalid/missing provider identification",
    "51": "Provider not on file",
    "56": "Inappropriate date",
    "57": "Invalid/missing date(s) of service",
    "58": "Invalid/missing date of birth",
    "62": "Date of service not within allowable inquiry period",
    "63": "Date of service in future",
    "64": "Invalid/missing patient ID",
    "65": "Invalid/missing patient name",
    "67": "Patient not found",
    "71": "Patient birth date does not match that for the patient on the database",
    "72": "Invalid/missing subscriber/insured ID",
    "73": "Invalid/missing subscriber/insured name",
    "75": "Subscriber/insured not found",
    "76": "Duplicate subscriber/insured ID number",
    "78": "Subscriber/insured not in group/plan identified",
}
REFUSED_999 = "999"  # reject_reason of a check whose 270 the payer's front end refused
_PLAN_BEGIN = ("346", "356", "291")  # plan begin, eligibility begin, plan (a period)
_PLAN_END = ("347", "357", "291")
_NETWORKS = {"Y": Network.IN, "N": Network.OUT, "W": Network.BOTH}
_BASIS = Decimal(10000)


@dataclass(slots=True)
class BenefitRow:
    service_type: str
    network: Network
    copay_cents: int | None = None
    coinsurance_basis_points: int | None = None
    deductible_cents: int | None = None
    deductible_remaining_cents: int | None = None


@dataclass(slots=True)
class Result:
    status: CheckStatus
    plan_begin: date | None = None
    plan_end: date | None = None
    reject_reason: str | None = None
    reject_text: str | None = None
    benefits: list[BenefitRow] = field(default_factory=list)


def reject_text(code: str) -> str:
    return REJECT_REASONS.get(code, "Rejected by the payer")


def basis_points(percent: str, where: str) -> int:
    """EB08 as basis points: a decimal fraction (0.2 = 20 % = 2000), exactly, never through a float."""
    try:
        value = Decimal(percent) * _BASIS
    except InvalidOperation:
        raise X12Error("the coinsurance percent is not a number", segment_id=where, element=8) from None
    if not 0 <= value <= _BASIS or value != value.to_integral_value():
        raise X12Error("the coinsurance percent is not a fraction of 1 in basis points", segment_id=where)
    return int(value)


def read_answer(data: bytes) -> Result:
    """The check's result from the payer's bytes: a 271 (its first patient answer) or a 999 refusal. Bytes
    that are neither readable 271 nor 999 are ``unknown`` naming where they failed (never their content)."""
    try:
        for transaction in transactions(data):
            if transaction.kind == "999":
                return _refusal(ack.read(transaction))
            if transaction.kind == "271":
                return _from_271(transaction)
            return Result(CheckStatus.UNKNOWN, reject_text=f"the payer answered with a {transaction.kind}")
    except X12Error as error:
        where = f" (segment {error.segment_id})" if error.segment_id else ""
        return Result(CheckStatus.UNKNOWN, reject_text=f"the payer's answer could not be read{where}")
    return Result(CheckStatus.UNKNOWN, reject_text="the payer's answer holds no transaction set")


def _refusal(group: ack.GroupResponse) -> Result:
    return Result(
        CheckStatus.REFUSED,
        reject_reason=REFUSED_999,
        reject_text=f"the payer's front end refused the 270 (999 {group.status})",
    )


def _from_271(transaction: object) -> Result:
    response = read_271(transaction)  # type: ignore[arg-type]
    rejections = list(response.rejections)
    answer = response.answers[0] if response.answers else None
    if answer is not None:
        rejections.extend(answer.rejections)
    if rejections and (answer is None or not answer.benefits):
        code = rejections[0].reason
        return Result(CheckStatus.REFUSED, reject_reason=code, reject_text=reject_text(code))
    if answer is None:
        return Result(CheckStatus.UNKNOWN, reject_text="the 271 answers no patient")
    begin, end = _plan_dates(answer)
    return Result(
        CheckStatus(answer.coverage), plan_begin=begin, plan_end=end, benefits=_benefits(answer.benefits)
    )


def _plan_dates(answer: Answer) -> tuple[date | None, date | None]:
    begin = next((d.start for q in _PLAN_BEGIN for d in answer.dates if d.qualifier == q), None)
    end = None
    for qualifier in _PLAN_END:
        for found in answer.dates:
            # A single date under 346/356 is a begin only; a 291 period or a 347/357 gives the end.
            if found.qualifier == qualifier and (qualifier != "291" or found.end != found.start):
                end = end or found.end
    return begin, end


def _benefits(benefits: tuple[Benefit, ...]) -> list[BenefitRow]:
    """Copay (B), coinsurance (A) and deductible (C; EB06 29 is what remains) per service type and
    network. The first value a payer gives for a (service type, network, kind) wins."""
    rows: dict[tuple[str, Network], BenefitRow] = {}
    for benefit in benefits:
        if benefit.code not in ("A", "B", "C"):
            continue
        network = _NETWORKS.get(benefit.in_network or "", Network.UNSPECIFIED)
        for service_type in benefit.service_types or ("30",):
            row = rows.setdefault((service_type, network), BenefitRow(service_type, network))
            if benefit.code == "B" and row.copay_cents is None:
                row.copay_cents = benefit.amount
            elif benefit.code == "A" and row.coinsurance_basis_points is None and benefit.percent:
                row.coinsurance_basis_points = basis_points(benefit.percent, "EB")
            elif benefit.code == "C" and benefit.time_period == "29":
                row.deductible_remaining_cents = row.deductible_remaining_cents or benefit.amount
            elif benefit.code == "C":
                row.deductible_cents = row.deductible_cents or benefit.amount
    return [row for row in rows.values() if _any(row)]


def _any(row: BenefitRow) -> bool:
    return any(
        value is not None
        for value in (
            row.copay_cents,
            row.coinsurance_basis_points,
            row.deductible_cents,
            row.deductible_remaining_cents,
        )
    )
